import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { compilePolicy, explain } from '../../policies/index.js'
import type { PolicyRequest, Principal } from '../../policies/types.js'
import { fencedBlocks } from './fenced-blocks.js'

/**
 * The `policy explain` output quoted in docs/policies.md is what the engine prints for the
 * rules the page shows: the `site/` rules of its YAML block and the `anonymous` rule of its prose.
 */
const blocks = fencedBlocks('docs/policies.md')
const siteRules = blocks.find((b) => b.lang === 'yaml' && b.text.includes('not the raw alarms'))

/** The two devices of the examples: boiler-1 connects with its PSK only, valve-2 with a username. */
const principals: Record<string, Principal> = {
  'boiler-1': { deviceId: 'boiler-1', clientId: 'boiler-1', groups: [] },
  'valve-2': { deviceId: 'valve-2', clientId: 'valve-2', username: 'valve-2', groups: [] },
}

interface Example {
  command: string
  quoted: string[]
}

/** Each `$ edge-gateway policy explain ...` line of the page's shell blocks, with the lines it shows. */
function examples(): Example[] {
  const out: Example[] = []
  for (const block of blocks.filter((b) => b.lang === 'sh')) {
    for (const line of block.text.trimEnd().split('\n')) {
      if (line.startsWith('$ ')) out.push({ command: line.slice(2), quoted: [] })
      else out.at(-1)?.quoted.push(line)
    }
  }
  return out.filter((e) => e.command.startsWith('edge-gateway policy explain '))
}

function requestOf(command: string): { device: string; request: PolicyRequest } {
  const device = /--device (\S+)/.exec(command)?.[1]
  const publish = /--publish '?([^' ]+)'?/.exec(command)?.[1]
  const subscribe = /--subscribe '?([^' ]+)'?/.exec(command)?.[1]
  if (!device || (publish === undefined) === (subscribe === undefined))
    throw new Error(`cannot read: ${command}`)
  return {
    device,
    request:
      publish !== undefined
        ? { action: 'publish', topic: publish, qos: 0, retain: false, payloadBytes: 0 }
        : { action: 'subscribe', topic: subscribe!, qos: 0 },
  }
}

describe('docs/policies.md explain examples', () => {
  const quoted = examples()

  it('the page quotes explain output for both the deny overlap and the anonymous rule', () => {
    expect(siteRules).toBeDefined()
    expect(quoted.map((e) => e.command)).toEqual([
      'edge-gateway policy explain -c gateway.yaml --device boiler-1 --publish lan/no-username/x',
      'edge-gateway policy explain -c gateway.yaml --device valve-2 --publish lan/no-username/x',
      "edge-gateway policy explain -c gateway.yaml --device valve-2 --subscribe 'site/#'",
      "edge-gateway policy explain -c gateway.yaml --device valve-2 --subscribe 'site/temps/#'",
    ])
  })

  it.each(quoted.map((e) => [e.command, e] as const))(
    '%s prints what the page shows',
    (_command, example) => {
      const rules = (parse(siteRules!.text) as { rules: unknown[] }).rules
      const engine = compilePolicy({
        rules: [
          ...rules,
          { name: 'no-username devices', who: 'anonymous', topic: 'lan/no-username/#', action: 'publish' },
        ],
      })
      const { device, request } = requestOf(example.command)
      const printed = explain(engine, principals[device]!, request).split('\n')
      expect(printed.slice(0, example.quoted.length)).toEqual(example.quoted)
    },
  )

  it('a deny rule refuses every subscription that overlaps it, and only those', () => {
    const engine = compilePolicy(parse(siteRules!.text))
    const subscribe = (topic: string) =>
      engine.decide(principals['valve-2']!, { action: 'subscribe', topic, qos: 0 }).allowed
    expect(['site/#', 'site/alarms/#', 'site/+/raw', 'site/alarms/raw'].map(subscribe)).toEqual([
      false,
      false,
      false,
      false,
    ])
    expect(['site/temps/#', 'site/alarms/cooked', 'site/+/cooked'].map(subscribe)).toEqual([true, true, true])
  })
})
