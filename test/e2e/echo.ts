import { fileURLToPath } from 'node:url'
import type { LabProcess, NetnsLab } from './netns.js'

const SERVER = fileURLToPath(new URL('./scripts/echo-server.mjs', import.meta.url))
const CLIENT = fileURLToPath(new URL('./scripts/echo-client.mjs', import.meta.url))

/** Starts a TCP echo server inside `ns`, bound to `host:port` only; resolves once it listens. */
export async function startEchoServer(
  lab: NetnsLab,
  ns: string,
  host: string,
  port: number,
): Promise<LabProcess> {
  const server = await lab.spawn(ns, process.execPath, [SERVER, host, String(port)])
  await server.waitForLine(/^listening /)
  return server
}

/** Connects from inside `ns` to `host:port`, sends `payload` and returns what came back. */
export async function echoOnce(
  lab: NetnsLab,
  ns: string,
  host: string,
  port: number,
  payload: string,
): Promise<string> {
  const { stdout } = await lab.exec(ns, process.execPath, [CLIENT, host, String(port), payload], {
    timeoutMs: 10_000,
  })
  return stdout
}
