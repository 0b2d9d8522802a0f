import type { WriteStream } from 'node:tty'
import { BACKUP_NAME_PATTERN, TARGET_NAME_PATTERN, TERMINAL_STATUSES, type Backup, type CreateBackupRequest } from '../../../schemas/backup.ts'
import { createRuleProblems, JOBS_RANGE, LEVEL_RANGE, type CreateRuleProblem } from '../../../schemas/create-rules.ts'
import { withBackupApi } from '../with-backup-api.ts'
import type { BackupApi, BackupWatcher } from '../backup-api.ts'
import {
  enumFlag, GLOBAL_HELP, intFlag, parseCommandArgs, patternFlag, UsageError, write, type CliIO, type Command, type Globals,
} from '../command.ts'
import { EXIT, exitCodeForFailedJob } from '../exit-codes.ts'
import { onInterrupt } from '../interrupt.ts'
import { backupDuration, formatBytes, formatDuration, printJson } from '../output.ts'
import { ProgressReporter } from '../progress-bar.ts'
import { setDetails } from '../set-output.ts'
import type { BackupSet } from '../../../schemas/sets.ts'

const OPTIONS = {
  target: { type: 'string' },
  name: { type: 'string' },
  format: { type: 'string' },
  compression: { type: 'string' },
  level: { type: 'string' },
  'schema-only': { type: 'boolean' },
  'data-only': { type: 'boolean' },
  schema: { type: 'string', multiple: true },
  'exclude-table': { type: 'string', multiple: true },
  jobs: { type: 'string' },
  verify: { type: 'string' },
  'count-rows': { type: 'boolean' },
  'all-databases': { type: 'boolean' },
  database: { type: 'string', multiple: true },
  globals: { type: 'boolean' },
} as const

/** The shared create rules in the words of the flags a user typed. */
function flagWording (problem: CreateRuleProblem, level: number | undefined): string {
  switch (problem.rule) {
    case 'level-without-compression': return '--level cannot be used with --compression none'
    case 'level-out-of-range': return `--level must be between ${problem.range.min} and ${problem.range.max}, got ${level}`
    case 'schema-only-with-data-only': return '--schema-only and --data-only cannot be used together'
    case 'jobs-without-directory': return '--jobs above 1 needs --format directory (pg_dump dumps in parallel only into a directory)'
    case 'all-databases-with-databases': return '--all-databases takes every database of the server; --database cannot be given with it'
    case 'set-with-schemas': return '--schema needs a single-database backup; --all-databases and --database dump whole databases'
  }
}

/** Flags -> API body, rejecting bad values here so nothing is queued for a request that cannot run. */
export function createRequestFromFlags (v: Record<string, unknown>): CreateBackupRequest {
  const s = (k: string): string | undefined => v[k] as string | undefined
  const compression = enumFlag(s('compression'), 'compression', ['zstd', 'gzip', 'none'] as const)
  const format = enumFlag(s('format'), 'format', ['custom', 'plain', 'directory', 'tar'] as const)
  // any integer here: its range depends on --compression and is one of the shared rules below
  const level = intFlag(s('level'), 'level', -Infinity, Infinity)
  const jobs = intFlag(s('jobs'), 'jobs', JOBS_RANGE.min, JOBS_RANGE.max)
  const verify = enumFlag(s('verify'), 'verify', ['off', 'after', 'inline'] as const)
  const req: CreateBackupRequest = {
    target: patternFlag(s('target'), 'target', TARGET_NAME_PATTERN),
    name: patternFlag(s('name'), 'name', BACKUP_NAME_PATTERN),
    format,
    compression,
    level,
    schemaOnly: v['schema-only'] === true ? true : undefined,
    dataOnly: v['data-only'] === true ? true : undefined,
    schemas: v.schema as string[] | undefined,
    excludeTables: v['exclude-table'] as string[] | undefined,
    jobs,
    verify,
    countRows: v['count-rows'] === true ? true : undefined,
    allDatabases: v['all-databases'] === true ? true : undefined,
    databases: v.database as string[] | undefined,
    globals: v.globals === true ? true : undefined,
  }
  for (const db of req.databases ?? []) if (db.length > 63 || /[\u0000-\u001f]/.test(db)) throw new UsageError('--database must be 1..63 characters without control characters')
  for (const k of Object.keys(req) as (keyof CreateBackupRequest)[]) if (req[k] === undefined) delete req[k]
  const [problem] = createRuleProblems(req)
  if (problem) throw new UsageError(flagWording(problem, level))
  return req
}

function summary (b: Backup): string {
  return `${b.name}  ${formatBytes(b.sizeBytes)}  in ${formatDuration(backupDuration(b))}  (id ${b.id})`
}

/** The end of every create: one record on stdout for --json, else one human line. */
function finish (io: CliIO, globals: Globals, b: Backup): number {
  if (b.status === 'completed') {
    if (globals.json) printJson(io, b)
    else write(io.stdout, `completed ${summary(b)}`)
    return EXIT.OK
  }
  if (globals.json) printJson(io, b)
  if (b.status === 'cancelled') {
    write(io.stderr, `pgkeep: backup ${b.name} cancelled`)
    return EXIT.CANCELLED
  }
  const code = b.error?.code ?? 'INTERNAL'
  write(io.stderr, `pgkeep: ${code}: ${b.error?.message ?? `backup ended as ${b.status}`}`)
  return exitCodeForFailedJob(code)
}

/** The end of a set's create: the set with its members, exit as its first failed member's would be. */
function finishSet (io: CliIO, globals: Globals, set: BackupSet): number {
  if (globals.json) printJson(io, set)
  else io.stdout.write(setDetails(set))
  if (set.status === 'completed') return EXIT.OK
  if (set.status === 'cancelled') {
    write(io.stderr, `pgkeep: backup set ${set.name} cancelled`)
    return EXIT.CANCELLED
  }
  write(io.stderr, `pgkeep: ${set.error?.code ?? 'INTERNAL'}: ${set.error?.message ?? `backup set ended as ${set.status}`}`)
  return exitCodeForFailedJob(set.error?.code ?? 'INTERNAL')
}

/** Live progress on stderr; status changes and pg_dump's lines only with --verbose. */
function watcher (reporter: ProgressReporter, globals: Globals): BackupWatcher {
  return {
    progress: p => reporter.update(p),
    status: b => { if (globals.verbose && !TERMINAL_STATUSES.includes(b.status)) reporter.message(`${b.status}: ${b.name}`) },
    log: line => { if (globals.verbose) reporter.message(line) },
  }
}

async function create (api: BackupApi, io: CliIO, globals: Globals, req: CreateBackupRequest): Promise<number> {
  const reporter = new ProgressReporter(io.stderr, { tty: io.isTTY, columns: (io.stderr as WriteStream).columns || 80 })
  const run = await api.create(req, watcher(reporter, globals))
  const { name, id } = run.backup
  const startedWhat = run.backup.set ? `backup set ${run.backup.set.name}` : name
  if (!globals.json) reporter.message(`started ${startedWhat}${api.origin ? ` on ${api.origin}` : ''} (id ${run.backup.set?.id ?? id})`)
  if (!globals.json) for (const note of run.backup.notes ?? []) reporter.message(`note: ${note}`)
  const stopListening = onInterrupt(io, run.setDone ? `backup set ${run.backup.set?.name}` : `backup ${name}`, run.cancel)
  try {
    if (run.setDone) {
      const set = await run.setDone
      reporter.done()
      return finishSet(io, globals, set)
    }
    const final = await run.done
    reporter.done(final.status === 'completed')
    return finish(io, globals, final)
  } finally {
    stopListening()
  }
}

export const command: Command = {
  name: 'create',
  help: `Usage: pgkeep create [flags]

Dumps a target with pg_dump, shows live progress (a bar on a terminal, a line every few seconds
otherwise) and waits until the backup is completed, failed or cancelled. Ctrl-C cancels the dump
cleanly (exit 130). With --json only the final backup record is printed on stdout.

Flags:
  --target NAME          configured target (default: "default", from DATABASE_URL)
  --name NAME            file name (default <target>-<db>-<UTC time>-<id>.<ext>)
  --format F             custom (default), plain, directory or tar
  --compression C        zstd (default), gzip or none
  --level N              compression level: zstd ${LEVEL_RANGE.zstd.min}..${LEVEL_RANGE.zstd.max}, gzip ${LEVEL_RANGE.gzip.min}..${LEVEL_RANGE.gzip.max}
  --schema-only          definitions only, no data
  --data-only            data only, no definitions
  --schema S             only this schema (repeatable; pg_dump -n pattern)
  --exclude-table T      leave this table out (repeatable; pg_dump -T pattern)
  --jobs N               parallel workers, directory format only (${JOBS_RANGE.min}..${JOBS_RANGE.max})
  --verify MODE          inline: pg_restore reads the archive while it is written; a failure fails the backup
                         after: validate in full (checksum + pg_restore read) before the job completes
                         off (default: the target's "verify", else off; scheduled backups default to inline)
  --count-rows           count every table's rows in the dump's own snapshot, so a restore drill
                         compares exactly (a second scan of every table; see docs/drills.md)
  --all-databases        a backup set: every database of the target's server (templates never; postgres
                         only when it holds objects; the target's excludeDatabases left out) plus the
                         globals (roles, memberships, tablespaces), one backup each, run one after another
  --database DB          a backup set of these databases plus the globals (repeatable)
  --globals              add the server's globals to a single-database backup (making it a set of two)

Exit codes: 0 completed, 1 failed, 2 usage error, 130 cancelled. A set completes only when every
member did; Ctrl-C cancels the whole set.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, globals } = parseCommandArgs(argv, OPTIONS, io)
    const req = createRequestFromFlags(values)
    return await withBackupApi(io, globals, async api => await create(api, io, globals, req))
  },
}
