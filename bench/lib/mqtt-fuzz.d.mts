/** Types for mqtt-fuzz.mjs, so the TypeScript fuzz test uses the same fuzzer as bench/fuzz.mjs. */
export interface Random {
  next(): number
  int(n: number): number
  chance(p: number): boolean
  pick<T>(list: readonly T[]): T
  bytes(n: number): Buffer
}
export function createRandom(seed: number): Random
export const MUTATOR_NAMES: string[]
export function mutate(bytes: Buffer, r: Random, others: readonly Buffer[]): { bytes: Buffer; ops: string[] }

export interface FuzzDevice {
  clientId: string
  username: string
  password: string
  /** The device's own topic prefix (no trailing slash). */
  topic: string
  /** A topic the gateway requires sealed payloads on. */
  sealedTopic: string
}
export interface Corpus {
  before: Buffer[]
  after: Buffer[]
  /** The valid CONNECT a worker authenticates with (its own client id). */
  connectAs(worker: number): Buffer
}
export function corpus(device: FuzzDevice, sealed: (topic: string) => Buffer, pre?: FuzzDevice): Corpus

export interface FuzzResult {
  sent: number
  before: number
  after: number
  closedByGateway: number
  authFailed: number
  ops: Record<string, number>
}
export function runFuzz(options: {
  port: number
  seed: number
  cases: number
  concurrency?: number
  deadline?: number
  base: Corpus
  settleMs?: number
  /** Local address for the cases before authentication (for example 127.0.0.2). */
  beforeAddress?: string
}): Promise<FuzzResult>
