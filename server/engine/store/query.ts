import type { Backup, ListQuery, ListResult } from '../../../schemas/backup.ts'
import { InvalidInputError } from '../../errors.ts'

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 500

interface Keys {
  createdMs: number
  durationMs: number | undefined
  /** name, target, database and createdBy lower-cased, NUL-separated so a match never spans two fields */
  haystack: string
  nameLower: string
}

// Registry records are replaced, never mutated, on change: derived keys can be cached per object across queries.
const cache = new WeakMap<Backup, Keys>()

function keysOf (b: Backup): Keys {
  let k = cache.get(b)
  if (k === undefined) {
    const started = b.startedAt === undefined ? NaN : Date.parse(b.startedAt)
    const finished = b.finishedAt === undefined ? NaN : Date.parse(b.finishedAt)
    const nameLower = b.name.toLowerCase()
    k = {
      createdMs: Date.parse(b.createdAt),
      durationMs: Number.isNaN(started) || Number.isNaN(finished) ? undefined : finished - started,
      haystack: `${nameLower}\0${b.target.toLowerCase()}\0${b.database.toLowerCase()}\0${b.createdBy.toLowerCase()}`,
      nameLower,
    }
    cache.set(b, k)
  }
  return k
}

function parseBound (value: string | undefined, field: 'from' | 'to'): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new InvalidInputError(`${field} must be an ISO 8601 date-time, got "${value}"`, field)
  return ms
}

type SortValue = number | string | undefined

function sortValue (b: Backup, k: Keys, sort: NonNullable<ListQuery['sort']>): SortValue {
  switch (sort) {
    case 'createdAt': return Number.isNaN(k.createdMs) ? undefined : k.createdMs
    case 'name': return k.nameLower
    case 'sizeBytes': return b.sizeBytes
    // Alphabetical, like every other text column a user clicks on.
    case 'status': return b.status
    case 'target': return b.target
    case 'duration': return k.durationMs
  }
}

/**
 * Filters, sorts and pages a list of backups. Filters: status and target exact, from/to inclusive on createdAt,
 * q a case-insensitive substring of name/target/database/createdBy. Records without the sort value come last
 * in either order; ties keep the input order (the registry's newest-first), so paging is stable.
 * `newestFirst`: the input is already in the registry's order (createdAt descending), so the default sort is
 * that order as it stands: at 100,000 backups the list most asked for is then a filter and a slice, not a sort.
 */
export function queryBackups (backups: Backup[], query: ListQuery, opts: { newestFirst?: boolean } = {}): ListResult {
  const from = parseBound(query.from, 'from')
  const to = parseBound(query.to, 'to')
  const q = query.q?.toLowerCase()
  const page = Math.max(1, Math.floor(query.page ?? 1))
  const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(query.pageSize ?? DEFAULT_PAGE_SIZE)))

  const sort = query.sort ?? 'createdAt'
  const dir = (query.order ?? 'desc') === 'asc' ? 1 : -1
  const start = (page - 1) * pageSize
  /** the record's keys when it passes every filter */
  const matching = (b: Backup): Keys | undefined => {
    if (query.status !== undefined && b.status !== query.status) return undefined
    if (query.target !== undefined && b.target !== query.target) return undefined
    const k = keysOf(b)
    if (from !== undefined && !(k.createdMs >= from)) return undefined
    if (to !== undefined && !(k.createdMs <= to)) return undefined
    if (q !== undefined && q !== '' && !k.haystack.includes(q)) return undefined
    return k
  }

  if (opts.newestFirst === true && sort === 'createdAt' && dir === -1) {
    const items: Backup[] = []
    let total = 0
    let dated = true
    for (const b of backups) {
      const k = matching(b)
      if (k === undefined) continue
      // a record without a date would have to go last: only the sort below places it
      if (Number.isNaN(k.createdMs)) dated = false
      if (total >= start && total < start + pageSize) items.push(b)
      total++
    }
    if (dated) return { items, total, page, pageSize }
  }

  const rows: { b: Backup, v: SortValue, i: number }[] = []
  for (let i = 0; i < backups.length; i++) {
    const k = matching(backups[i])
    if (k !== undefined) rows.push({ b: backups[i], v: sortValue(backups[i], k, sort), i })
  }

  rows.sort((x, y) => {
    if (x.v === undefined || y.v === undefined) {
      if (x.v === undefined && y.v === undefined) return x.i - y.i
      return x.v === undefined ? 1 : -1
    }
    if (x.v < y.v) return -dir
    if (x.v > y.v) return dir
    return x.i - y.i
  })
  return { items: rows.slice(start, start + pageSize).map(r => r.b), total: rows.length, page, pageSize }
}
