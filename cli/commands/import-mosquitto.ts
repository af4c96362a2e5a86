import type { Command } from 'commander'
import type { ImportOptions } from '../actions/import-mosquitto.js'

/** `policy import-mosquitto` (cli/actions/import-mosquitto.ts). */
export function registerImportMosquitto(policy: Command): void {
  policy
    .command('import-mosquitto')
    .description("convert Mosquitto's acl_file, password_file and psk_file to devices.yaml and policies.yaml")
    .option('--acl-file <file>', "Mosquitto's acl_file")
    .option('--password-file <file>', "Mosquitto's password_file")
    .option('--psk-file <file>', "Mosquitto's psk_file")
    .requiredOption('--out <dir>', 'where to write devices.yaml, policies.yaml and keys/')
    .action(async (options: ImportOptions) =>
      (await import('../actions/import-mosquitto.js')).importMosquitto(options),
    )
}
