import type { WriteStream } from 'node:tty'
import { BACKUP_NAME_PATTERN, TARGET_NAME_PATTERN, TERMINAL_STATUSES, type Backup, type CreateBackupRequest, type Progress } from '../../../schemas/backup.ts'
import {
  enumFlag, GLOBAL_HELP, intFlag, parseCommandArgs, patternFlag, UsageError, write, type CliIO, type Command, type Globals,
} from '../command.ts'
import { PgkeepError } from '../../errors.ts'
import { EXIT, exitCodeForFailedJob } from '../exit-codes.ts'
import { cliUser, onInterrupt, withLocalService } from '../local-service.ts'
import { backupDuration, formatBytes, formatDuration, printJson } from '../output.ts'
import { ProgressReporter } from '../progress-bar.ts'
import { RemoteClient } from '../remote-client.ts'

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
} as const

/** Flags -> API body, rejecting bad values here so nothing is queued for a request that cannot run. */
export function createRequestFromFlags (v: Record<string, unknown>): CreateBackupRequest {
  const s = (k: string): string | undefined => v[k] as string | undefined
  const compression = enumFlag(s('compression'), 'compression', ['zstd', 'gzip', 'none'] as const)
  const format = enumFlag(s('format'), 'format', ['custom', 'plain', 'directory', 'tar'] as const)
  const level = intFlag(s('level'), 'level', 1, compression === 'gzip' ? 9 : 19)
  const jobs = intFlag(s('jobs'), 'jobs', 1, 32)
  if (v['schema-only'] && v['data-only']) throw new UsageError('--schema-only and --data-only cannot be used together')
  if (jobs !== undefined && jobs > 1 && format !== 'directory') throw new UsageError('--jobs above 1 needs --format directory (pg_dump dumps in parallel only into a directory)')
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
  }
  for (const k of Object.keys(req) as (keyof CreateBackupRequest)[]) if (req[k] === undefined) delete req[k]
  return req
}

function summary (b: Backup): string {
  return `${b.name}  ${formatBytes(b.sizeBytes)}  in ${formatDuration(backupDuration(b))}  (id ${b.id})`
}

/** The end of every create, local or remote: one record on stdout for --json, else one human line. */
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

interface Watch {
  id?: string
  reporter: ProgressReporter
  globals: Globals
  io: CliIO
}

function onProgress (w: Watch, p: Progress): void {
  if (p.backupId === w.id) w.reporter.update(p)
}
function onStatus (w: Watch, b: Backup): void {
  if (b.id === w.id && w.globals.verbose && !TERMINAL_STATUSES.includes(b.status)) w.reporter.message(`${b.status}: ${b.name}`)
}
function onLog (w: Watch, e: { backupId: string, line: string }): void {
  if (e.backupId === w.id && w.globals.verbose) w.reporter.message(e.line)
}

function reporterFor (io: CliIO): ProgressReporter {
  return new ProgressReporter(io.stderr, { tty: io.isTTY, columns: (io.stderr as WriteStream).columns || 80 })
}

async function createLocal (io: CliIO, globals: Globals, req: CreateBackupRequest): Promise<number> {
  return await withLocalService(io, globals, async (service) => {
    const w: Watch = { reporter: reporterFor(io), globals, io }
    service.on('progress', p => onProgress(w, p))
    service.on('status', b => onStatus(w, b))
    service.on('log', e => onLog(w, e))
    const created = await service.create(req, cliUser())
    w.id = created.id
    if (!globals.json) w.reporter.message(`started ${created.name} (id ${created.id})`)
    const stopListening = onInterrupt(io, `backup ${created.name}`, async () => await service.cancel(created.id))
    try {
      const final = await service.waitFor(created.id)
      w.reporter.done()
      return finish(io, globals, final)
    } finally {
      stopListening()
    }
  })
}

async function createRemote (io: CliIO, globals: Globals, req: CreateBackupRequest, client: RemoteClient): Promise<number> {
  const w: Watch = { reporter: reporterFor(io), globals, io }
  let resolveFinal!: (b: Backup) => void
  let rejectFinal!: (err: Error) => void
  const final = new Promise<Backup>((resolve, reject) => { resolveFinal = resolve; rejectFinal = reject })
  const terminal = (b: Backup): void => { if (b.id === w.id && TERMINAL_STATUSES.includes(b.status)) resolveFinal(b) }
  // the socket opens before the create call so no status change can slip between the two
  const socket = await client.events((e) => {
    if (e.type === 'progress') onProgress(w, e)
    else if (e.type === 'status') { onStatus(w, e.backup); terminal(e.backup) }
    else if (e.type === 'log') onLog(w, e)
    else if (e.type === 'snapshot') for (const j of e.jobs) { terminal(j.backup); if (j.progress) onProgress(w, j.progress) }
  })
  let finished = false
  const stopListening = onInterrupt(io, 'the remote backup', async () => { if (w.id) await client.cancel(w.id) })
  try {
    const created = await client.create(req)
    w.id = created.id
    if (!globals.json) w.reporter.message(`started ${created.name} on ${client.base.origin} (id ${created.id})`)
    terminal(created)
    // a job that ended between the create reply and our id being known shows up in its status
    client.status(created.id).then(s => terminal(s.backup), () => {})
    socket.closed.then(async () => {
      if (finished) return
      const id = w.id as string
      const now = (await client.status(id)).backup
      terminal(now)
      // the server keeps running the job; say where to look instead of waiting forever
      if (!TERMINAL_STATUSES.includes(now.status)) rejectFinal(new PgkeepError('INTERNAL', `lost the event socket to ${client.base.origin}; the backup goes on there: pgkeep status ${id} --server ${client.base.origin}`))
    }).catch((err: unknown) => rejectFinal(err as Error))
    const b = await final
    w.reporter.done()
    return finish(io, globals, b)
  } finally {
    finished = true
    stopListening()
    socket.close()
  }
}

export const command: Command = {
  name: 'create',
  summary: 'run a pg_dump backup now and wait for it',
  help: `Usage: pgkeep create [flags]

Dumps a target with pg_dump, shows live progress (a bar on a terminal, a line every few seconds
otherwise) and waits until the backup is completed, failed or cancelled. Ctrl-C cancels the dump
cleanly (exit 130). With --json only the final backup record is printed on stdout.

Flags:
  --target NAME          configured target (default: "default", from DATABASE_URL)
  --name NAME            file name (default <target>-<db>-<UTC time>-<id>.<ext>)
  --format F             custom (default), plain, directory or tar
  --compression C        zstd (default), gzip or none
  --level N              compression level: zstd 1..19, gzip 1..9
  --schema-only          definitions only, no data
  --data-only            data only, no definitions
  --schema S             only this schema (repeatable; pg_dump -n pattern)
  --exclude-table T      leave this table out (repeatable; pg_dump -T pattern)
  --jobs N               parallel workers, directory format only (1..32)

Exit codes: 0 completed, 1 failed, 2 usage error, 130 cancelled.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, globals } = parseCommandArgs(argv, OPTIONS, io)
    const req = createRequestFromFlags(values)
    if (globals.server) return await createRemote(io, globals, req, new RemoteClient(globals.server, globals.token ?? ''))
    return await createLocal(io, globals, req)
  },
}
