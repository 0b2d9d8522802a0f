import type { Backup, ListQuery, ListResult } from '../../../schemas/backup.ts'
import { InvalidInputError } from '../../errors.ts'

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 500
// the most rows a sorted list keeps in order as it filters (page × pageSize); deeper pages sort everything
const TOP_ROWS_MAX = 2000

interface Keys {
  createdMs: number
  durationMs: number | undefined
  /** name, target, database and createdBy lower-cased, NUL-separated so a match never spans two fields */
  haystack: string
  nameLower: string
}

// Registry records are replaced, never mutated, on change: derived keys can be cached per object across queries.
// On the record itself, under a symbol and not enumerable: a property read instead of a WeakMap lookup (at 100,000
// records, the difference is most of a text search), and invisible to JSON and to deep equality.
const KEYS = Symbol('pgkeep.query-keys')

function keysOf (b: Backup): Keys {
  let k = (b as { [KEYS]?: Keys })[KEYS]
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
    Object.defineProperty(b, KEYS, { value: k })
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

/** In the registry's order (createdAt descending), the indexes [first, end) of the records within [from, to]. */
function dateStretch (backups: readonly Backup[], from: number | undefined, to: number | undefined): [number, number] {
  const firstWhere = (lo: number, past: (ms: number) => boolean): number => {
    let hi = backups.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (past(keysOf(backups[mid]).createdMs)) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const first = to === undefined ? 0 : firstWhere(0, ms => ms > to)
  const end = from === undefined ? backups.length : firstWhere(first, ms => ms >= from)
  return [first, end]
}

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
 * `newestFirst`: the input is already in the registry's order (createdAt descending) and schema-checked, so the
 * default sort is that order as it stands: at 100,000 backups the list most asked for is then a filter and a
 * slice, not a sort.
 */
export function queryBackups (backups: readonly Backup[], query: ListQuery, opts: { newestFirst?: boolean } = {}): ListResult {
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

  // in the registry's order a date range is one stretch of the list, found by two binary searches
  const [first, end] = opts.newestFirst === true ? dateStretch(backups, from, to) : [0, backups.length]

  // The registry's records passed the Backup schema (createdAt is a date-time), so in its order nothing needs
  // moving; only a filter on the derived keys (dates, text) needs them, at a WeakMap lookup per record.
  if (opts.newestFirst === true && sort === 'createdAt' && dir === -1) {
    const byKeys = from !== undefined || to !== undefined || (q !== undefined && q !== '')
    const items: Backup[] = []
    let total = 0
    for (let i = first; i < end; i++) {
      const b = backups[i]
      if (query.status !== undefined && b.status !== query.status) continue
      if (query.target !== undefined && b.target !== query.target) continue
      if (byKeys && matching(b) === undefined) continue
      if (total >= start && total < start + pageSize) items.push(b)
      total++
    }
    return { items, total, page, pageSize }
  }

  type Row = { b: Backup, v: SortValue, i: number }
  const compare = (xv: SortValue, xi: number, yv: SortValue, yi: number): number => {
    if (xv === undefined || yv === undefined) {
      if (xv === undefined && yv === undefined) return xi - yi
      return xv === undefined ? 1 : -1
    }
    if (xv < yv) return -dir
    if (xv > yv) return dir
    return xi - yi
  }
  const order = (x: Row, y: Row): number => compare(x.v, x.i, y.v, y.i)
  const precedes = (v: SortValue, i: number, y: Row): boolean => compare(v, i, y.v, y.i) < 0
  // Only the first `start + pageSize` rows of the order are shown: kept sorted as they come, the rest never sorted.
  // A deep page would make that slower than one sort of everything: then everything is sorted.
  const keep = start + pageSize
  const partial = keep <= TOP_ROWS_MAX
  const rows: Row[] = []
  let total = 0
  for (let i = first; i < end; i++) {
    const k = matching(backups[i])
    if (k === undefined) continue
    total++
    const v = sortValue(backups[i], k, sort)
    if (!partial) {
      rows.push({ b: backups[i], v, i })
      continue
    }
    // most rows do not make the cut: told without making a row for them
    if (rows.length === keep && !precedes(v, i, rows[keep - 1])) continue
    const row = { b: backups[i], v, i }
    let lo = 0
    let hi = rows.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (order(rows[mid], row) <= 0) lo = mid + 1
      else hi = mid
    }
    rows.splice(lo, 0, row)
    if (rows.length > keep) rows.pop()
  }
  if (!partial) rows.sort(order)
  return { items: rows.slice(start, start + pageSize).map(r => r.b), total, page, pageSize }
}
