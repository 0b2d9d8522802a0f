import type { ChildProcessByStdio } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import type { BackupFormat, BackupOptions, Compression } from '../../../schemas/backup.ts'
import { createRuleProblems } from '../../../schemas/create-rules.ts'
import { InvalidInputError } from '../../errors.ts'
import { spawnChild } from '../pg/child-process.ts'
import { directoryCompressionSupported } from '../pg/tools.ts'

export { classifyPgFailure, PgFailure, scrubSecrets } from './pg-dump-errors.ts'

export interface PgDumpPlan {
  format: BackupFormat
  compression: Compression
  level: number
  options: BackupOptions
  pgDumpMajor: number
  /** directory format only: the .partial directory pg_dump creates and writes into */
  outputDir?: string
  /** --lock-wait-timeout: how long pg_dump may wait for each table's lock; 0 or absent = forever */
  lockWaitTimeoutSeconds?: number
  /** pg_dump --snapshot: an exported snapshot to dump (countRows) */
  snapshot?: string
}

const FORMAT_FLAG: Record<BackupFormat, string> = { custom: 'c', plain: 'p', directory: 'd', tar: 't' }

function directoryCompression (plan: PgDumpPlan): string[] {
  if (plan.compression === 'none') return ['-Z0']
  if (plan.compression === 'gzip') return ['-Z', String(plan.level)]
  if (!directoryCompressionSupported(plan.compression, plan.pgDumpMajor)) throw new InvalidInputError('zstd inside directory format needs pg_dump 16+; use gzip', 'compression')
  return [`--compress=zstd:${plan.level}`]
}

/**
 * pg_dump's argv. Every value is its own element and spawn gets no shell, so nothing here is ever
 * interpreted; user patterns use the --opt=value form so one starting with '-' cannot become a flag.
 */
export function buildPgDumpArgs (plan: PgDumpPlan, connArgs: string[]): string[] {
  const { format, compression, options } = plan
  // a resolved plan records level 0 for no compression, where a request would leave the level out
  const [problem] = createRuleProblems({ ...options, format, compression, level: compression === 'none' ? undefined : plan.level })
  if (problem) throw new InvalidInputError(problem.message, problem.field)
  if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new InvalidInputError('jobs must be a positive integer', 'jobs')
  // -w: a missing or wrong passfile entry must fail fast, never hang on a password prompt
  const args = ['--verbose', '-w', '-F', FORMAT_FLAG[format]]
  if (format === 'directory') {
    if (!plan.outputDir) throw new InvalidInputError('directory format needs an output directory', 'format')
    args.push('-f', plan.outputDir, '-j', String(options.jobs), ...directoryCompression(plan))
  } else {
    // stdout, uncompressed: our own compressor sees (and counts, and hashes) the raw stream.
    // Only custom compresses by default; plain and tar never do.
    if (format === 'custom') args.push('-Z0')
  }
  if (options.schemaOnly) args.push('--schema-only')
  if (options.dataOnly) args.push('--data-only')
  for (const s of options.schemas) args.push(`--schema=${s}`)
  for (const t of options.excludeTables) args.push(`--exclude-table=${t}`)
  if (options.noOwner) args.push('--no-owner')
  if (options.noPrivileges) args.push('--no-privileges')
  // fail fast behind a long DDL rather than queue behind it, blocking every later query on that table too
  if (plan.lockWaitTimeoutSeconds !== undefined && plan.lockWaitTimeoutSeconds > 0) args.push(`--lock-wait-timeout=${plan.lockWaitTimeoutSeconds}s`)
  // countRows: the snapshot the rows were counted in (dump/row-counts.ts)
  if (plan.snapshot !== undefined) args.push(`--snapshot=${plan.snapshot}`)
  return [...args, ...connArgs]
}

export interface PgDumpExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** the last stderr lines, for error messages */
  stderrTail: string[]
  /** set when pg_dump could not be started at all (e.g. ENOENT) */
  spawnError?: string
}

export interface PgDumpRun {
  /** the dump bytes (empty for directory format) */
  stdout: Readable
  /** emits 'line' for each stderr line */
  lines: EventEmitter
  onLine (cb: (line: string) => void): void
  exited: Promise<PgDumpExit>
  kill (signal: NodeJS.Signals): void
  pid: number | undefined
}

const STDERR_TAIL_LINES = 50
const MAX_LINE_CHARS = 8192
/** after exit, how long to wait for the rest of stderr (a forked worker may still hold the pipe) */
const STDERR_DRAIN_MS = 2000

export function spawnPgDump (pgDumpPath: string, args: string[], env: NodeJS.ProcessEnv): PgDumpRun {
  // its own process group: a terminal's Ctrl-C reaches only pgkeep, which then cancels cleanly,
  // instead of racing pg_dump's own death into a "failed" backup
  const child = spawnChild(pgDumpPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<null, Readable, Readable>
  const lines = new EventEmitter()
  const tail: string[] = []
  let partial = ''
  const emitLine = (line: string): void => {
    tail.push(line)
    if (tail.length > STDERR_TAIL_LINES) tail.shift()
    lines.emit('line', line)
  }
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    // a line without a newline for this long is not a log line; cut it rather than grow without bound
    if (partial.length > MAX_LINE_CHARS) { emitLine(partial); partial = '' }
    for (const p of parts) emitLine(p.endsWith('\r') ? p.slice(0, -1) : p)
  })
  const stderrDone = new Promise<void>(resolve => {
    child.stderr.once('close', () => {
      if (partial !== '') emitLine(partial)
      partial = ''
      resolve()
    })
  })
  // stdout is handed out through a PassThrough so a spawn failure still gives callers a stream that ends
  const stdout = child.stdout ?? new PassThrough().end()

  let exitedState = false
  const exited = new Promise<PgDumpExit>(resolve => {
    child.once('error', err => {
      exitedState = true
      const message = `could not start pg_dump (${pgDumpPath}): ${(err as NodeJS.ErrnoException).code ?? err.message}`
      emitLine(message)
      resolve({ code: null, signal: null, stderrTail: [...tail], spawnError: message })
    })
    child.once('exit', (code, signal) => {
      exitedState = true
      let timer: NodeJS.Timeout | undefined
      // the timer phase runs before the poll phase: after an event loop stall the timer could fire while the
      // last stderr lines already wait in the pipe, so give the poll phase two more turns to deliver them
      const drained = new Promise<void>(r => { timer = setTimeout(() => { setImmediate(() => { setImmediate(r) }) }, STDERR_DRAIN_MS) })
      Promise.race([stderrDone, drained]).then(() => {
        clearTimeout(timer)
        resolve({ code, signal, stderrTail: [...tail] })
      }, () => {})
    })
  })

  return {
    stdout,
    lines,
    onLine: cb => { lines.on('line', cb) },
    exited,
    kill: (signal) => { if (!exitedState) child.kill(signal) },
    pid: child.pid,
  }
}

/**
 * pg_dump --verbose (LC_MESSAGES=C, PostgreSQL 12-17) logs `dumping contents of table "S.T"` with
 * the raw schema and table names (not fmtQualifiedId): nothing is escaped, so a dot inside either
 * name makes the split ambiguous. With `known` tables the split that names a real table wins;
 * without it, the first dot is taken as the separator (schema names with dots are the rarer case).
 */
export function parseDumpingTable (line: string, known?: ReadonlyArray<{ schema: string, table: string }>): { schema: string, table: string } | undefined {
  const m = /^pg_dump: dumping contents of table "(.*)"\s*$/.exec(line)
  if (!m) return undefined
  const qualified = m[1]
  const splits: { schema: string, table: string }[] = []
  for (let i = qualified.indexOf('.'); i !== -1; i = qualified.indexOf('.', i + 1)) {
    splits.push({ schema: qualified.slice(0, i), table: qualified.slice(i + 1) })
  }
  if (splits.length === 0) return undefined
  if (known && splits.length > 1) {
    const hit = splits.find(s => known.some(k => k.schema === s.schema && k.table === s.table))
    if (hit) return hit
  }
  return splits[0]
}
