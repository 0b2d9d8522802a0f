import type { ListQuery } from '../../../schemas/backup.ts'
import { withBackupApi } from '../with-backup-api.ts'
import { dateFlag, enumFlag, GLOBAL_HELP, intFlag, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'
import { listRows } from '../set-output.ts'
import type { BackupSet } from '../../../schemas/sets.ts'

const OPTIONS = {
  status: { type: 'string' },
  target: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  q: { type: 'string' },
  sort: { type: 'string' },
  order: { type: 'string' },
  page: { type: 'string' },
  'page-size': { type: 'string' },
} as const

export function listQueryFromFlags (values: Record<string, unknown>): ListQuery {
  const v = values as Record<string, string | undefined>
  const q: ListQuery = {
    status: enumFlag(v.status, 'status', ['queued', 'running', 'verifying', 'completed', 'failed', 'cancelled'] as const),
    target: v.target,
    from: dateFlag(v.from, 'from'),
    to: dateFlag(v.to, 'to'),
    q: v.q,
    sort: enumFlag(v.sort, 'sort', ['createdAt', 'name', 'sizeBytes', 'status', 'target', 'duration'] as const),
    order: enumFlag(v.order, 'order', ['asc', 'desc'] as const),
    page: intFlag(v.page, 'page', 1, 1_000_000),
    pageSize: intFlag(v['page-size'], 'page-size', 1, 500),
  }
  if (q.target !== undefined && q.target.length > 63) throw new UsageError('--target is at most 63 characters')
  if (q.q !== undefined && q.q.length > 200) throw new UsageError('--q is at most 200 characters')
  if (q.from && q.to && q.from > q.to) throw new UsageError('--from is after --to')
  for (const k of Object.keys(q) as (keyof ListQuery)[]) if (q[k] === undefined) delete q[k]
  return q
}

export const command: Command = {
  name: 'list',
  help: `Usage: pgkeep list [flags]

Flags:
  --status S        queued, running, verifying, completed, failed or cancelled
  --target NAME     only this target
  --from DATE       created at or after (ISO date or date-time)
  --to DATE         created at or before
  --q TEXT          substring of name, target, database or creator (case-insensitive)
  --sort FIELD      createdAt (default), name, sizeBytes, status, target or duration
  --order asc|desc  default desc
  --page N          default 1
  --page-size N     1..500, default 50

A * after the status marks a pinned backup (never removed by cleanup). A backup set (create
--all-databases) is one row with its members under it, indented; the set is kept, pinned, deleted and
restored as one (pgkeep info SETID, pgkeep restore SETID).

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, globals } = parseCommandArgs(argv, OPTIONS, io)
    const query = listQueryFromFlags(values)
    const { result, sets } = await withBackupApi(io, globals, async api => {
      const result = await api.list(query)
      if (globals.json) return { result, sets: new Map<string, BackupSet>() }
      const ids = [...new Set(result.items.map(b => b.set?.id).filter((x): x is string => x !== undefined))]
      return { result, sets: new Map(await Promise.all(ids.map(async id => [id, await api.getSet(id)] as const))) }
    })
    if (globals.json) {
      printJson(io, result)
      return EXIT.OK
    }
    if (result.items.length === 0) {
      write(io.stdout, result.total === 0 ? 'no backups' : `no backups on page ${result.page} (${result.total} in all)`)
      return EXIT.OK
    }
    io.stdout.write(listRows(result.items, sets))
    const first = (result.page - 1) * result.pageSize + 1
    if (result.total > result.items.length) write(io.stdout, `${first}-${first + result.items.length - 1} of ${result.total}`)
    return EXIT.OK
  },
}
