import { parseArgs, type ParseArgsConfig } from 'node:util'
import { closest } from './suggest.ts'

/** Everything a command may touch of the outside world, so tests and the dispatcher can swap it. */
export interface CliIO {
  stdout: NodeJS.WriteStream | NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  stdin: NodeJS.ReadableStream
  /** stderr is a terminal: live progress bars (which go to stderr) may redraw in place */
  isTTY: boolean
  env: NodeJS.ProcessEnv
}

export interface Command {
  name: string
  /** the one-line summary lives in main.ts's table, so `pgkeep --help` loads no command */
  help: string
  /** argv excludes the command name; resolves to the process exit code */
  run (argv: string[], io: CliIO): Promise<number>
}

/** The caller's mistake: the dispatcher prints `pgkeep: <message>` and exits 2. */
export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>

/** Flags every command accepts; main.ts moves them after the command name when given before it. */
export const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  server: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec

export const GLOBAL_HELP = `Global flags:
  --json            machine-readable output on stdout
  --verbose         more detail (pg_dump log lines, stack of causes)
  --server URL      drive a remote pgkeep server instead of the local engine
  --token T         API token for --server; prefer PGKEEP_TOKEN (argv is visible in ps)
  -h, --help        this help`

export interface Globals {
  json: boolean
  verbose: boolean
  server?: string
  token?: string
}

export interface Parsed<O extends OptionSpec> {
  values: { [K in keyof (O & typeof GLOBAL_OPTIONS)]?: (O & typeof GLOBAL_OPTIONS)[K] extends { type: 'string', multiple: true } ? string[]
    : (O & typeof GLOBAL_OPTIONS)[K] extends { type: 'string' } ? string : boolean }
  positionals: string[]
  globals: Globals
}

/**
 * parseArgs in strict mode plus the global flags; its TypeErrors become UsageErrors with one line.
 * `positionals` bounds how many bare arguments the command takes.
 */
export function parseCommandArgs<O extends OptionSpec> (argv: string[], options: O, io: CliIO, positionals: { min?: number, max?: number, names?: string } = {}): Parsed<O> {
  let result
  const all = { ...GLOBAL_OPTIONS, ...options }
  try {
    result = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(cleanParseError((err as Error).message, Object.keys(all)))
  }
  const values = result.values as Record<string, unknown>
  const pos = result.positionals
  if (!values.help) {
    const { min = 0, max = 0, names = 'argument' } = positionals
    if (pos.length < min) throw new UsageError(`missing ${names}`)
    if (pos.length > max) throw new UsageError(`unexpected argument "${pos[max]}"`)
  }
  const token = (values.token as string | undefined) ?? (io.env.PGKEEP_TOKEN || undefined)
  const server = values.server as string | undefined
  if (server !== undefined && !/^https?:\/\/[^\s]+$/.test(server)) throw new UsageError(`--server must be an http(s):// URL, got "${server}"`)
  if (server !== undefined && !token) throw new UsageError('--server needs --token or PGKEEP_TOKEN')
  return {
    values: values as Parsed<O>['values'],
    positionals: pos,
    globals: { json: values.json === true, verbose: values.verbose === true, server, token },
  }
}

function cleanParseError (message: string, known: string[]): string {
  // node's messages span lines and suggest "--" for positionals; one short line is enough here
  const first = message.split('\n')[0].trim()
  const unknown = /^Unknown option '([^']+)'/.exec(first)
  if (unknown) {
    const flag = unknown[1]
    const guess = flag.startsWith('--') ? closest(flag.slice(2).split('=')[0], known) : undefined
    return `unknown flag ${flag}${guess ? `; did you mean --${guess}?` : ''}`
  }
  const missing = /^Option '([^']+)' argument missing/.exec(first)
  if (missing) return `${missing[1].replace(/^-\w, /, '').replace(/ <value>$/, '')} needs a value`
  const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(first)
  if (ambiguous) return `${ambiguous[1].replace(/^-\w, /, '')} value starts with "-"; write ${ambiguous[1].replace(/^-\w, /, '')}=VALUE`
  return first.replace(/\.$/, '')
}

/** An integer flag within bounds, or undefined when absent; a bad value names the flag. */
export function intFlag (value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${flag} must be an integer, got "${value}"`)
  const n = Number(value)
  if (n < min || n > max) throw new UsageError(`--${flag} must be between ${min} and ${max}, got ${n}`)
  return n
}

export function numberFlag (value: string | undefined, flag: string, exclusiveMin: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got "${value}"`)
  if (n <= exclusiveMin) throw new UsageError(`--${flag} must be greater than ${exclusiveMin}, got ${n}`)
  return n
}

export function enumFlag<T extends string> (value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`)
  return value as T
}

export function patternFlag (value: string | undefined, flag: string, pattern: string): string | undefined {
  if (value === undefined) return undefined
  if (!new RegExp(pattern).test(value)) throw new UsageError(`--${flag} "${value}" is not valid (must match ${pattern})`)
  return value
}

/** ISO date or date-time; a bare date means midnight UTC. */
export function dateFlag (value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw new UsageError(`--${flag} must be an ISO date or date-time, got "${value}"`)
  return new Date(ms).toISOString()
}

export const BACKUP_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** The help text's words for what a BACKUP argument may be. */
export const BACKUP_REF_HELP = `BACKUP is an ID, a unique ID prefix (8+ characters), the backup's name, latest (the newest
completed backup) or latest:TARGET (the newest completed backup of that target).`

/** A BACKUP argument as given; which backup it means is resolved once the engine or server is reached (backupIdFor). */
export function backupRefArg (value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError('missing backup (an ID, ID prefix, name or latest[:TARGET])')
  if (value.length > 200) throw new UsageError('a backup reference is at most 200 characters')
  return value
}

export function write (stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : text + '\n')
}
