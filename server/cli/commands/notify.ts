import { loadConfig } from '../../config.ts'
import { configuredChannels, Notifier } from '../../alerts/notifier.ts'
import { GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'notify',
  help: `Usage: pgkeep notify [--json]
       pgkeep notify test NAME [--json]

Without arguments: the notification channels of the configuration file (name, type, events, where they go;
never a URL path, token or password). "test NAME" sends that channel a test message now, one attempt, and
says whether it was delivered (exit 0) or why not (exit 1). See docs/notifications.md.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { positionals, globals } = parseCommandArgs(argv, {}, io, { max: 2, names: 'test NAME' })
    if (globals.server) throw new UsageError('notify reads the local configuration; it does not take --server (use POST /api/notifications/NAME/test)')
    const [action, name] = positionals
    if (action !== undefined && action !== 'test') throw new UsageError(`unknown action "${action}"; expected: test NAME`)
    if (action === 'test' && name === undefined) throw new UsageError('missing channel NAME')
    const notifier = new Notifier(configuredChannels(loadConfig(io.env)))
    try {
      if (action === undefined) {
        const channels = notifier.list()
        if (globals.json) printJson(io, { items: channels })
        else if (channels.length === 0) write(io.stdout, 'no notification channels are configured')
        else for (const c of channels) write(io.stdout, `${c.name}  ${c.type}  ${c.destination}  ${c.events.join(',')}`)
        return EXIT.OK
      }
      const result = await notifier.test(name!)
      if (globals.json) printJson(io, result)
      else if (result.ok) write(io.stdout, `delivered to ${name} (${result.type}) in ${result.durationMs} ms`)
      else write(io.stderr, `pgkeep: not delivered to ${name} (${result.type}): ${result.error}`)
      return result.ok ? EXIT.OK : EXIT.FAILED
    } finally {
      notifier.close()
    }
  },
}
