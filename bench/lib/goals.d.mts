/** Types for goals.mjs, so the unit tests can build synthetic rows in TypeScript. */

export interface Summary {
  median: number
  min: number
  max: number
  n: number
  sum: number
}

export interface GoalRow {
  group: string
  load: string
  setup: string
  loadSpec?: { idle?: number; afterMs?: number }
  trials: Array<{
    error?: string
    startup?: { firstConnectionMs?: number; firstDeliveryMs?: number }
    restart?: { fullSpeedAfterMs: number | null }
  }>
  summary: Record<string, Summary | null>
}

export interface AtRestSummary {
  setup: string
  system: string
  n: number
  of: number
  rssMiB: Summary | null
  peakMiB: Summary | null
  errors: string[]
}

export interface Goal {
  kind: 'ratio' | 'absolute'
  op: '>=' | '<='
  value: number
}

export interface GoalResult {
  id: string
  what: string
  unit: string
  gateway: number | null
  mosquitto: number | null
  ratio: number | null
  goal: Partial<Goal> & { text: string }
  met: boolean | null
  notes: string[]
  p50?: { gateway: number | null; mosquitto: number | null }
  p99?: { gateway: number | null; mosquitto: number | null }
  /** What to print instead of a missing figure (a restart never back at full speed: "> 4000"). */
  text?: { gateway?: string; mosquitto?: string }
}

export interface GoalExtras {
  atRest?: AtRestSummary[]
  gatewayQueue?: 'disk' | 'memory'
  storm?: { what: string; unit: string; gateway: number | null; mosquitto: number | null; goal: Goal } | null
}

export function ratioOf(a: number | null, b: number | null): number | null
export function judge(goal: Goal, gateway: number | null, mosquitto: number | null): boolean | null
export function goals(rows: GoalRow[], extras?: GoalExtras): GoalResult[]
export function formatGoals(list: GoalResult[]): string
