/** Types for storm-goal.mjs, for its unit test. */

export interface StormEntry {
  what: string
  unit: string
  gateway: number | null
  mosquitto: number | null
  goal: { kind: 'absolute'; op: '<='; value: number }
  notes: string[]
}

export const STORM_GOAL: StormEntry['goal']
export function stormEntry(report: unknown): StormEntry
export function runStormGoal(
  log: (line: string) => void,
): Promise<{ entry: StormEntry | null; error: string | null }>
