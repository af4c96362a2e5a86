import type { Command } from 'commander'
import { DEAD_LETTER_REASONS } from '../../bridge/dead-letter/reasons.js'
import type { ActionOptions, ListOptions } from '../actions/deadletter.js'

export function registerDeadLetter(program: Command): void {
  const dl = program
    .command('deadletter')
    .description(
      'messages held aside instead of being sent to the cloud (no mapping, less protection, unsendable): list, retry or drop them',
    )
  dl.command('list')
    .description('list the dead letters: gw-seq, state, reason, device, topic, sizes (never payloads)')
    .requiredOption('-c, --config <file>', 'the gateway config file')
    .option('--json', 'print them as JSON')
    .action(async (options: ListOptions) => (await import('../actions/deadletter.js')).list(options))
  for (const action of ['retry', 'drop'] as const) {
    dl.command(`${action} [gw-seq...]`)
      .description(
        action === 'retry'
          ? 'send dead letters again, with their gw-seq (after fixing the config, for example); one that still cannot go is held aside again'
          : 'delete dead letters: they are never sent',
      )
      .requiredOption('-c, --config <file>', 'the gateway config file')
      .option('--all', `${action} every dead letter (of --reason, when given)`)
      .option(
        '--reason <reason>',
        `with --all: only those set aside for this reason (${DEAD_LETTER_REASONS.join(', ')})`,
      )
      .option('--wait-ms <ms>', 'how long to wait for a running gateway to take the request', '10000')
      .action(async (seqs: string[], options: ActionOptions) =>
        (await import('../actions/deadletter.js')).act(action, seqs, options),
      )
  }
}
