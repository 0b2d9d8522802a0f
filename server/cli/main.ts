import { pathToFileURL } from 'node:url'
import { GLOBAL_HELP, GLOBAL_OPTIONS, write, type CliIO, type Command } from './command.ts'
import { EXIT } from './exit-codes.ts'
import { reportError } from './output.ts'
import { closest } from './suggest.ts'

interface CommandEntry {
  summary: string
  load: () => Promise<{ command?: Command }>
}

/**
 * Each command is loaded on demand so `pgkeep list` never pays for fastify, and `pgkeep --help` for no command at
 * all (its summaries are here, not in the modules). Literal import() calls (not computed paths) let the bundler
 * split each command into its own chunk.
 */
export const COMMANDS: Record<string, CommandEntry> = {
  create: { summary: 'run a pg_dump backup now and wait for it', load: async () => await import('./commands/create.ts') },
  list: { summary: 'list backups (filter, sort, paginate)', load: async () => await import('./commands/list.ts') },
  info: { summary: 'show one backup in detail', load: async () => await import('./commands/info.ts') },
  status: { summary: 'status and live progress of one backup (same as info)', load: async () => await import('./commands/status.ts') },
  validate: { summary: 're-read a backup fully and check it (exit 3 if it is damaged)', load: async () => await import('./commands/validate.ts') },
  cleanup: { summary: 'apply the retention policy (delete old backups; --dry-run to preview)', load: async () => await import('./commands/cleanup.ts') },
  delete: { summary: 'delete one backup (its files, manifest and copies)', load: async () => await import('./commands/delete.ts') },
  restore: { summary: 'restore a completed backup into a database, or a whole set onto a server', load: async () => await import('./commands/restore.ts') },
  drill: { summary: 'prove a backup restores: restore it into a scratch database, check it, drop it', load: async () => await import('./commands/drill.ts') },
  pin: { summary: 'keep a backup forever (or --off to let retention remove it again)', load: async () => await import('./commands/pin.ts') },
  cancel: { summary: 'cancel a queued or running backup', load: async () => await import('./commands/cancel.ts') },
  download: { summary: 'fetch a completed backup to a file (resumable, checksum verified)', load: async () => await import('./commands/download.ts') },
  reindex: { summary: 'rebuild the catalog (registry.json or PostgreSQL) from the manifests', load: async () => await import('./commands/reindex.ts') },
  doctor: { summary: 'check tools, targets, backups dir and free space', load: async () => await import('./commands/doctor.ts') },
  serve: { summary: 'run the web dashboard and the HTTP API', load: async () => await import('./commands/serve.ts') },
  user: { summary: 'add, list, remove users and change their password or role', load: async () => await import('./commands/user.ts') },
  token: { summary: 'create, list and revoke API tokens', load: async () => await import('./commands/token.ts') },
  catalog: { summary: 'import the file catalog (registry.json, drills) into the PostgreSQL catalog', load: async () => await import('./commands/catalog.ts') },
  notify: { summary: 'list the notification channels, or send one a test message', load: async () => await import('./commands/notify.ts') },
}

async function loadCommand (name: string): Promise<Command | undefined> {
  return (await COMMANDS[name].load()).command
}

const VALUE_FLAGS = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === 'string').map(([k]) => `--${k}`))

/** Global flags may come before the command name; they are moved after it so the command parses them. */
function splitCommand (argv: string[]): { name?: string, before: string[], rest: string[] } {
  const before: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('-')) return { name: a, before, rest: argv.slice(i + 1) }
    before.push(a)
    if (VALUE_FLAGS.has(a) && i + 1 < argv.length) before.push(argv[++i])
  }
  return { before, rest: [] }
}

function generalHelp (): string {
  const lines = ['Usage: pgkeep <command> [flags]', '', 'Commands:']
  for (const [name, { summary }] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)}${summary}`)
  lines.push('', GLOBAL_HELP, '', 'Run `pgkeep <command> --help` for the flags of one command.')
  return lines.join('\n') + '\n'
}

export async function dispatch (argv: string[], io: CliIO): Promise<number> {
  const { name, before, rest } = splitCommand(argv)
  if (name === undefined) {
    const help = generalHelp()
    const asked = before.includes('--help') || before.includes('-h')
    ;(asked ? io.stdout : io.stderr).write(help)
    return asked ? EXIT.OK : EXIT.USAGE
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    const guess = closest(name, Object.keys(COMMANDS))
    write(io.stderr, `pgkeep: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''} (see pgkeep --help)`)
    return EXIT.USAGE
  }
  let cmd: Command | undefined
  try {
    cmd = await loadCommand(name)
  } catch (err) {
    return reportError(io, err)
  }
  if (!cmd) {
    write(io.stderr, `pgkeep: command "${name}" is not available in this build`)
    return EXIT.FAILED
  }
  const args = [...before, ...rest]
  // "--" ends flags: a value after it that looks like --help is not a help request
  const flags = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  if (flags.includes('--help') || flags.includes('-h')) {
    io.stdout.write(cmd.help.endsWith('\n') ? cmd.help : cmd.help + '\n')
    return EXIT.OK
  }
  try {
    return await cmd.run(args, io)
  } catch (err) {
    const code = reportError(io, err, args.includes('--verbose'))
    if (code === EXIT.USAGE && !(err instanceof Error && 'code' in err)) write(io.stderr, `see pgkeep ${name} --help`)
    return code
  }
}

async function main (): Promise<void> {
  const code = await dispatch(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    // live progress goes to stderr, so `pgkeep create --json | jq` still shows a bar on the terminal
    isTTY: process.stderr.isTTY === true,
    env: process.env,
  })
  process.exitCode = code
  // process.exit would cut a piped stdout short; wait until both streams have flushed
  await new Promise<void>(resolve => process.stdout.write('', () => resolve()))
  await new Promise<void>(resolve => process.stderr.write('', () => resolve()))
  process.exit(code)
}

// Imported by tests for in-process dispatch; run only when launched as the CLI (bin/pgkeep.js or directly).
const entry = process.argv[1] ?? ''
if (/(^|[\\/])pgkeep(\.js)?$/.test(entry) || pathToFileURL(entry).href === import.meta.url) await main()
