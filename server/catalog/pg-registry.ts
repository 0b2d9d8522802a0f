import { isDeepStrictEqual } from 'node:util'
import type { Backup } from '../../schemas/backup.ts'
import { PgkeepError } from '../errors.ts'
import { ChangeTrackingMap } from '../engine/store/change-tracking-map.ts'
import { isValidBackup, recordsForWrite, trustBackup } from '../engine/store/record-check.ts'
import { rebuildRecords } from '../engine/store/rebuild.ts'
import type { RecordChange, RegistryBackend } from '../engine/store/registry-backend.ts'
import type { RegistryView } from '../engine/store/registry-view.ts'
import type { Storage } from '../engine/storage/storage.ts'
import type { CatalogDb } from './catalog-db.ts'

/** the pool or one transaction's connection */
type Sql = Pick<CatalogDb, 'query'>

/** NOTIFY channel: the payload is the change sequence number a writer just committed */
export const BACKUPS_CHANNEL = 'pgkeep_backups'
// every writer of pgkeep.backups takes this transaction-level advisory lock: it orders commits by change_seq
const WRITE_LOCK_KEY = 'pgkeep.backups'
const WRITE_BATCH = 500
// a deleted record stays a tombstone this long, so other instances learn of the delete from its change_seq
const TOMBSTONE_KEEP = '1 day'
const PRUNE_EVERY_MS = 3600_000

interface ChangeRow { id: string | null, seq: string | null, record: unknown, pruned: string | null }

// The horizon comes as one more row of the same statement (one snapshot with the rows). Not a join: on tables
// without statistics yet, the planner's guess for a join is big enough to start JIT compiling (half a second).
const HORIZON_ROW = 'SELECT NULL::text AS id, NULL::text AS seq, NULL::jsonb AS record, pruned_through::text AS pruned FROM pgkeep.backups_horizon'

function prunedThrough (rows: ChangeRow[]): number {
  return Number(rows.find(r => r.pruned !== null)?.pruned ?? 0)
}

/** The records one write stored, to show in the view once it committed. */
interface Written { seq: number, set: Backup[], deleted: string[] }

/**
 * The registry in the shared PostgreSQL catalog (pgkeep.backups, migration 0002). Reads stay in memory
 * (RegistryView); the catalog is the truth every instance shares:
 * - every write holds one advisory lock for its transaction and stamps the rows it writes with one new
 *   change_seq, so commits happen in change_seq order and "rows with change_seq > mine" is exactly what a view
 *   has not seen yet;
 * - a delete leaves a tombstone (record NULL) with its change_seq, kept a day; a view older than the oldest
 *   pruned tombstone (pgkeep.backups_horizon) reloads everything;
 * - a write catches up first, gives fn a ChangeTrackingMap over the view, and writes only what fn changed,
 *   then NOTIFY pgkeep_backups with its change_seq; every instance LISTENs and catches up, and does again after
 *   its LISTEN connection came back (notifications sent meanwhile are lost).
 */
export class PgRegistryBackend implements RegistryBackend {
  readonly label = 'the catalog'
  readonly #db: CatalogDb
  readonly #view: RegistryView
  readonly #manifests: Storage
  readonly #isBackupDir: boolean
  readonly #onWarning: (message: string) => void
  /** the newest change_seq the view holds; -1: nothing loaded yet */
  #seq = -1
  #listening = false
  #unlisten: (() => void) | undefined
  #pulling: Promise<void> | undefined
  #pullAgain = false
  /** the first load found a catalog that never held a backup: refresh() asks for a rebuild from the manifests */
  #empty = false
  #lastPrune = 0
  #closed = false
  /** change_seqs of this backend's own writes not shown yet: a catch-up that meets them first does not report them as remote */
  readonly #ownSeqs = new Set<number>()
  onRemoteChange?: (changes: RecordChange[]) => void

  constructor (db: CatalogDb, view: RegistryView, opts: { manifests: Storage, isBackupDir: boolean, onWarning: (message: string) => void }) {
    this.#db = db
    this.#view = view
    this.#manifests = opts.manifests
    this.#isBackupDir = opts.isBackupDir
    this.#onWarning = opts.onWarning
  }

  /** the change_seq the view is at (tests, diagnostics) */
  get seq (): number { return this.#seq }

  async refresh (): Promise<boolean> {
    if (!this.#listening) {
      this.#listening = true
      // listening before the first load: a change committed in between is heard, not lost
      this.#unlisten = await this.#db.listen(BACKUPS_CHANNEL, payload => {
        if (Number(payload) > this.#seq) this.#pull().catch(() => {})
      })
      this.#db.onReconnect(() => {
        if (!this.#closed) this.#pull().catch(() => {})
      })
    }
    await this.#pull()
    if (!this.#empty) return true
    this.#empty = false
    return false
  }

  /** A catalog that never held a backup, opened on storage with manifests: the backups come from them, as for a lost registry.json. */
  async repair (): Promise<void> {
    const { count, warnings } = await this.#rewrite(async client => {
      const { rows } = await client.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM pgkeep.backups) AS any')
      return !rows[0].any
    })
    if (count > 0 || warnings > 0) this.#onWarning(`the catalog held no backups; rebuilt from ${count} manifests`)
  }

  async update<T> (fn: (backups: Map<string, Backup>) => T | Promise<T>): Promise<T> {
    let written: Written | undefined
    // a job's status must not be lost to a catalog restart: the write waits for it to come back
    const result = await this.#db.transactionRetried(async client => {
      written = undefined
      await this.#lock(client)
      await this.#catchUp(client)
      const changes = new ChangeTrackingMap(this.#view.byId)
      const result = await fn(changes)
      const { set, deleted } = changes.changes()
      written = await this.#write(client, recordsForWrite(set), deleted)
      return result
    })
    if (written !== undefined) this.#show(written)
    return result
  }

  async rebuildFromManifests (): Promise<number> {
    return (await this.#rewrite(async () => true)).count
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#unlisten?.()
    await this.#pulling
  }

  /** Under the lock: when `when` says so, the records merged with the manifests, only what differs written. */
  async #rewrite (when: (client: Sql) => Promise<boolean>): Promise<{ count: number, warnings: number }> {
    let written: Written | undefined
    const out = await this.#db.transaction(async client => {
      await this.#lock(client)
      await this.#catchUp(client)
      if (!await when(client)) return { count: 0, warnings: 0 }
      const existing = this.#view.all()
      const { merged, fromManifests, warnings } = await rebuildRecords(this.#manifests, existing, {
        isBackupDir: this.#isBackupDir, onWarning: this.#onWarning, catalogName: this.label,
      })
      const keep = new Set(merged.map(b => b.id))
      const set = merged.filter(b => {
        const old = this.#view.get(b.id)
        return old !== b && !isDeepStrictEqual(old, b)
      })
      const deleted = existing.filter(b => !keep.has(b.id)).map(b => b.id)
      written = await this.#write(client, recordsForWrite(set), deleted)
      return { count: fromManifests.length, warnings: warnings.length }
    })
    if (written !== undefined) this.#show(written)
    return out
  }

  async #lock (client: Sql): Promise<void> {
    await lockBackups(client)
  }

  /** One catch-up at a time; a call while one runs gets one more round after it, so nothing asked for is missed. */
  #pull (): Promise<void> {
    if (this.#pulling !== undefined) {
      this.#pullAgain = true
      return this.#pulling
    }
    const run = async (): Promise<void> => {
      do {
        this.#pullAgain = false
        await this.#catchUp(this.#db)
      } while (this.#pullAgain && !this.#closed)
    }
    this.#pulling = run().finally(() => { this.#pulling = undefined })
    return this.#pulling
  }

  /**
   * Brings the view to the catalog's newest committed change. Rows are filtered against #seq when applied, not
   * when asked for: two catch-ups racing (a notification during a write) apply each change once.
   */
  async #catchUp (q: Sql): Promise<void> {
    if (this.#seq < 0) return await this.#loadAll(q)
    const { rows } = await q.query<ChangeRow>(`${HORIZON_ROW} UNION ALL
      SELECT id, change_seq::text, record, NULL FROM pgkeep.backups WHERE change_seq > $1`, [this.#seq])
    if (prunedThrough(rows) > this.#seq) return await this.#loadAll(q)
    const fresh = rows.filter(r => r.id !== null && Number(r.seq) > this.#seq)
    if (fresh.length === 0) return
    const set: Backup[] = []
    const deleted: string[] = []
    const changes: RecordChange[] = []
    for (const r of fresh) {
      const before = this.#view.get(r.id as string)
      if (r.record === null) deleted.push(r.id as string)
      else if (isValidBackup(r.record)) set.push(r.record)
      else {
        this.#onWarning(`the catalog's record ${r.id} does not match the Backup schema; ignored`)
        continue
      }
      if (!this.#ownSeqs.has(Number(r.seq)) && (before !== undefined || r.record !== null)) changes.push({ before, ...(r.record !== null ? { after: r.record as Backup } : {}) })
    }
    this.#view.apply(set, deleted)
    this.#seq = fresh.reduce((max, r) => Math.max(max, Number(r.seq)), this.#seq)
    if (changes.length > 0) this.onRemoteChange?.(changes)
  }

  async #loadAll (q: Sql): Promise<void> {
    // one statement, one snapshot: the records and the newest change_seq (tombstones included) agree
    const { rows } = await q.query<ChangeRow>(`${HORIZON_ROW} UNION ALL SELECT id, change_seq::text, record, NULL FROM pgkeep.backups`)
    let seq = prunedThrough(rows)
    const backups: Backup[] = []
    let invalid = 0
    for (const r of rows) {
      if (r.id === null) continue
      seq = Math.max(seq, Number(r.seq))
      if (r.record === null) continue
      if (isValidBackup(r.record)) backups.push(r.record)
      else invalid++
    }
    if (invalid > 0) this.#onWarning(`${invalid} record(s) in the catalog do not match the Backup schema; ignored (pgkeep reindex rewrites them from the manifests)`)
    if (seq <= this.#seq) return
    if (this.#seq < 0 && rows.every(r => r.id === null)) this.#empty = true
    // a reload after pruned tombstones: what changed is told by status (all a listener acts on), not by every field
    const changes = this.#seq < 0 ? [] : statusChanges(this.#view.all(), backups)
    this.#view.replace(backups)
    this.#seq = seq
    if (changes.length > 0) this.onRemoteChange?.(changes)
  }

  /** Stores one write's rows under one new change_seq and announces it (NOTIFY is sent at commit). */
  async #write (client: Sql, set: Backup[], deleted: string[]): Promise<Written | undefined> {
    if (set.length === 0 && deleted.length === 0) return undefined
    const seq = await nextChangeSeq(client)
    this.#ownSeqs.add(seq)
    if (deleted.length > 0) {
      await client.query(`UPDATE pgkeep.backups SET record = NULL, deleted_at = pg_catalog.now(), change_seq = $1
        WHERE id = ANY($2::text[]) AND deleted_at IS NULL`, [seq, deleted])
    }
    for (let i = 0; i < set.length; i += WRITE_BATCH) {
      await upsertRows(client, seq, set.slice(i, i + WRITE_BATCH))
    }
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now()
      await client.query(`WITH gone AS (
          DELETE FROM pgkeep.backups WHERE deleted_at < pg_catalog.now() - interval '${TOMBSTONE_KEEP}' RETURNING change_seq)
        UPDATE pgkeep.backups_horizon SET pruned_through = GREATEST(pruned_through, (SELECT max(change_seq) FROM gone))
        WHERE EXISTS (SELECT 1 FROM gone)`)
    }
    await client.query('SELECT pg_catalog.pg_notify($1, $2)', [BACKUPS_CHANNEL, String(seq)])
    for (const b of set) trustBackup(b)
    return { seq, set, deleted }
  }

  /** After the commit: a catch-up that already brought this change in (it raced us) is not applied twice. */
  #show (w: Written): void {
    this.#ownSeqs.delete(w.seq)
    if (w.seq <= this.#seq) return
    this.#view.apply(w.set, w.deleted)
    this.#seq = w.seq
  }
}

function statusChanges (old: Backup[], fresh: Backup[]): RecordChange[] {
  const before = new Map(old.map(b => [b.id, b]))
  const changes: RecordChange[] = []
  for (const b of fresh) {
    const was = before.get(b.id)
    before.delete(b.id)
    if (was?.status !== b.status) changes.push({ before: was, after: b })
  }
  for (const gone of before.values()) changes.push({ before: gone })
  return changes
}

/** Taken by every writer of pgkeep.backups, for the rest of its transaction. */
export async function lockBackups (client: Sql): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [WRITE_LOCK_KEY])
}

/** The change_seq of one write (under lockBackups: commits come in change_seq order). */
export async function nextChangeSeq (client: Sql): Promise<number> {
  const { rows } = await client.query<{ seq: string }>("SELECT pg_catalog.nextval('pgkeep.backups_change_seq')::text AS seq")
  return Number(rows[0].seq)
}

/** Inserts or replaces records; the columns beside `record` are for SQL readers and indexes, the record is the truth. */
export async function upsertRows (client: Sql, seq: number, records: Backup[]): Promise<void> {
  try {
    await client.query(`
      INSERT INTO pgkeep.backups (id, name, target, database, status, created_at, set_id, change_seq, deleted_at, record)
      SELECT r->>'id', r->>'name', r->>'target', r->>'database', r->>'status', (r->>'createdAt')::timestamptz,
             r->'set'->>'id', $1, NULL, r
      FROM pg_catalog.jsonb_array_elements($2::jsonb) AS r
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, target = excluded.target, database = excluded.database,
        status = excluded.status, created_at = excluded.created_at, set_id = excluded.set_id,
        change_seq = excluded.change_seq, deleted_at = NULL, record = excluded.record`, [seq, JSON.stringify(records)])
  } catch (err) {
    const e = err as { code?: string, constraint?: string, detail?: string }
    if (e.code === '23505' && e.constraint === 'backups_name_key') {
      const name = /\(name\)=\((.*)\) already exists/.exec(e.detail ?? '')?.[1]
      throw new PgkeepError('CONFLICT', `a backup named ${name ?? '(one of these)'} already exists`, { details: { field: 'name' } })
    }
    throw err
  }
}
