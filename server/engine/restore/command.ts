import type { Backup, RestoreRequest } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'

export interface RestoreCommand {
  tool: 'pg_restore' | 'psql'
  args: string[]
  /** the backup is decoded into the child's stdin; false when the tool reads the backup's file itself */
  viaStdin: boolean
  /** pg_restore -j: items are reported as "finished item N" */
  parallel: boolean
}

const FORMAT_FLAG = { custom: 'c', tar: 't', directory: 'd' } as const

/**
 * Owners are kept as dumped (pg_restore's default) unless the backup was taken with noOwner, so a
 * restore reproduces the source; restoring as a user who cannot SET ROLE to those owners fails
 * loudly on --exit-on-error instead of silently changing ownership.
 * pgkeep always restores into a database that has none of the backup's objects (a fresh scratch database,
 * or an existing one checked to be empty or merged into), so --clean is never used: over an existing copy it
 * fails on partitioned tables ("cannot drop inherited constraint") half-way through its drops.
 * `singleTransaction` (restores into an existing database) makes a failure leave it as it was; it rules out -j.
 * -j needs random access, so only a directory or an uncompressed custom file on disk gets it (`path`: absent for a
 * backup in object storage or encrypted); anything else is streamed through stdin.
 */
export function buildRestoreCommand (backup: Backup, path: string | undefined, connArgs: string[], req: RestoreRequest, opts: { singleTransaction: boolean }): RestoreCommand {
  if (backup.format === 'plain') {
    // -X: no ~/.psqlrc; -q: no per-statement chatter, errors still go to stderr
    const tx = opts.singleTransaction ? ['--single-transaction'] : []
    return { tool: 'psql', args: ['-X', '-q', '-w', '-v', 'ON_ERROR_STOP=1', ...tx, ...connArgs, '-f', '-'], viaStdin: true, parallel: false }
  }
  const args = ['-w', '--verbose', '--exit-on-error', ...connArgs, '-F', FORMAT_FLAG[backup.format]]
  if (opts.singleTransaction) args.push('--single-transaction')
  if (backup.options.noOwner) args.push('--no-owner')
  if (backup.options.noPrivileges) args.push('--no-privileges')
  const seekable = path !== undefined && (backup.format === 'directory' || (backup.format === 'custom' && backup.compression === 'none'))
  const parallel = seekable && !opts.singleTransaction && (req.jobs ?? 1) > 1
  if (parallel) args.push('-j', String(req.jobs))
  if (path !== undefined && (backup.format === 'directory' || parallel)) return { tool: 'pg_restore', args: [...args, path], viaStdin: false, parallel }
  return { tool: 'pg_restore', args, viaStdin: true, parallel }
}

export type RestoreLine =
  | { kind: 'data', table: string }
  | { kind: 'create', item: string }
  | { kind: 'finished', dumpId: number, item: string }

/** pg_restore --verbose progress lines (LC_MESSAGES=C); they quote user-chosen names and are never errors. */
export function parseRestoreLine (line: string): RestoreLine | undefined {
  let m = /^pg_restore: processing data for table "(.*)"$/.exec(line)
  if (m) return { kind: 'data', table: m[1] }
  m = /^pg_restore: finished item (\d+) (.*)$/.exec(line)
  if (m) return { kind: 'finished', dumpId: Number(m[1]), item: m[2] }
  m = /^pg_restore: creating (.*)$/.exec(line)
  if (m) return { kind: 'create', item: m[1] }
  return undefined
}

const VERBOSE_INFO = /^pg_restore: (?!error:|detail:|hint:|warning:|fatal:)/i
const ERROR_LINE = /^(?:pg_restore|psql)(?::[^:]*:\d+)?: (?:error|fatal):|\b(?:ERROR|FATAL):/
// a failed login says so on the connection line; the same words inside a statement error are a restore failure
const CONNECTION_LINE = /connection to server|could not connect|FATAL:/i

interface Rule { test: RegExp, code: 'PG_AUTH_FAILED' | 'PG_CONNECTION_FAILED', message: (line: string, m: RegExpExecArray) => string }

const RULES: Rule[] = [
  {
    test: /password authentication failed|no password supplied|authentication failed for user|role "((?:[^"]|"")*)" does not exist/i,
    code: 'PG_AUTH_FAILED',
    message: line => `PostgreSQL rejected the credentials; check the target's user and password (${line})`,
  },
  {
    test: /database "((?:[^"]|"")*)" does not exist/i,
    code: 'PG_CONNECTION_FAILED',
    message: (_line, m) => `database "${m[1]}" does not exist on the target server; restore with create to make it`,
  },
  {
    test: /could not connect|Connection refused|connection to server .* failed|could not translate host name|server closed the connection unexpectedly|too many clients|timeout expired/i,
    code: 'PG_CONNECTION_FAILED',
    message: line => `could not reach PostgreSQL (${line})`,
  },
]

const clip = (line: string): string => line.length > 300 ? `${line.slice(0, 300)}…` : line

/**
 * The PgkeepError for a failed pg_restore/psql: credentials and reachability get their own codes;
 * anything else is PG_RESTORE_FAILED with the last error line and the statement it names.
 */
export function classifyRestoreFailure (tool: string, stderrTail: string[], exitCode: number | null, scrub: (s: string) => string): PgkeepError {
  const lines = stderrTail.map(l => l.trimEnd()).filter(l => l.trim() !== '' && !VERBOSE_INFO.test(l))
  for (const line of lines) {
    if (!CONNECTION_LINE.test(line)) continue
    for (const rule of RULES) {
      const m = rule.test.exec(line)
      if (m) return new PgkeepError(rule.code, scrub(rule.message(clip(line), m)), { details: { exitCode } })
    }
  }
  let last = -1
  for (let i = lines.length - 1; i >= 0; i--) if (ERROR_LINE.test(lines[i])) { last = i; break }
  const shown = last >= 0 ? lines.slice(last, last + 3) : lines.slice(-2)
  const how = exitCode === null ? 'was killed' : `exited with code ${exitCode}`
  const what = shown.map(clip).join(' | ')
  return new PgkeepError('PG_RESTORE_FAILED', scrub(what ? `${tool} ${how}: ${what}` : `${tool} ${how} without an error message`), { details: { exitCode } })
}
