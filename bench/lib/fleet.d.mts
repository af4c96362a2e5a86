/** Types for fleet.mjs (the fleet simulator), for the TypeScript tests that drive it. */
import type { ChildProcess } from 'node:child_process'
import type { KeyObject } from 'node:crypto'

export const CONTROL_PREFIX: string
export const DATA_PREFIX: string

export interface SimulatedGateway {
  id: string
  key: KeyObject
  kid: Buffer
  binding: Buffer
}

export interface Fleet {
  caFile: string
  serverCertFile: string
  serverKeyFile: string
  consumerCertFile: string
  consumerKeyFile: string
  simulatorCertFile: string
  simulatorKeyFile: string
  gateways: SimulatedGateway[]
}

export function makeFleet(dir: string, gateways: number): Promise<Fleet>
export interface ConsumerConfigOptions {
  fleet: Fleet
  brokerPort: number
  redisPort?: number
  group?: string
  output?: 'stdout' | 'stream'
  stream?: string
}
export function consumerConfig(options: ConsumerConfigOptions): string
export function writeConsumerConfig(
  dir: string,
  name: string,
  options: ConsumerConfigOptions,
): Promise<string>
export function startRedis(options: { dir: string; port: number; binary?: string }): Promise<ChildProcess>

export interface SimulateOptions {
  fleet: Fleet
  brokerPort: number
  perGateway: number
  connections?: number
  rate?: number
  inflight?: number
  resendEvery?: number
  reorder?: number
  payloadBytes?: number
  gatewayCount?: number
  onProgress?: (sent: number) => void
}
export interface SimulateResult {
  gateways: number
  unique: number
  resent: number
  published: number
  seconds: number
}
export function simulateFleet(options: SimulateOptions): Promise<SimulateResult>
