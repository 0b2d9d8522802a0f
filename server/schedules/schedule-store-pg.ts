import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { SerialQueue } from '../auth/secure-file.ts'
import type { CatalogDb, Queryable } from '../catalog/catalog-db.ts'
import { compileOnUse } from '../compile-on-use.ts'
import { PgkeepError } from '../errors.ts'
import { MAX_MISSED_KEPT, StoredSchedule, type ScheduleState, type StoredSchedules } from './schedule-store.ts'

/** NOTIFY channel: {origin, name, what} after each change, so other instances re-read that schedule. */
export const SCHEDULES_CHANNEL = 'pgkeep_schedules'

interface Change { origin: string, name: string, what: 'schedule' | 'state' }

const checkSchedule = compileOnUse(StoredSchedule)

/**
 * Schedules and their run state in the shared catalog (pgkeep.schedules, pgkeep.schedule_state). Every instance
 * holds a copy in memory (the scheduler reads it on every tick and view) and re-reads a schedule when another
 * instance says it changed it (NOTIFY), or everything after its LISTEN connection came back. Who fires a
 * schedule's tick is not decided here.
 */
export class PgScheduleStore implements StoredSchedules {
  readonly path: string
  readonly #db: CatalogDb
  readonly #origin = randomUUID()
  readonly #queue = new SerialQueue()
  readonly #watchers = new Set<(name: string) => void>()
  #schedules = new Map<string, StoredSchedule>()
  #state = new Map<string, ScheduleState>()
  #unlisten: () => void = () => {}
  #closed = false

  private constructor (db: CatalogDb) {
    this.#db = db
    this.path = `the catalog (${db.target.database}: pgkeep.schedules)`
  }

  static async open (db: CatalogDb): Promise<PgScheduleStore> {
    const store = new PgScheduleStore(db)
    store.#unlisten = await db.listen(SCHEDULES_CHANNEL, payload => { store.#heard(payload) })
    // notifications sent while the LISTEN connection was down are lost: read everything again
    db.onReconnect(() => {
      if (!store.#closed) void store.#queue.run(async () => { await store.#reloadAll() }).catch(() => {})
    })
    await store.#queue.run(async () => { await store.#reloadAll() })
    return store
  }

  schedules (): StoredSchedule[] {
    return [...this.#schedules.values()].map(s => structuredClone(s))
  }

  state (name: string): ScheduleState | undefined {
    const s = this.#state.get(name)
    return s && structuredClone(s)
  }

  async putSchedule (s: StoredSchedule): Promise<void> {
    await this.#queue.run(async () => {
      await this.#db.transaction(async client => {
        await client.query(`INSERT INTO pgkeep.schedules (name, definition) VALUES ($1, $2)
          ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = pg_catalog.now()`, [s.name, JSON.stringify(s)])
        await this.#announce(client, s.name, 'schedule')
      })
      this.#schedules.set(s.name, structuredClone(s))
    })
  }

  async removeSchedule (name: string): Promise<void> {
    await this.#queue.run(async () => {
      await this.#db.transaction(async client => {
        await client.query('DELETE FROM pgkeep.schedules WHERE name = $1', [name])
        await client.query('DELETE FROM pgkeep.schedule_state WHERE name = $1', [name])
        await this.#announce(client, name, 'schedule')
      })
      this.#schedules.delete(name)
      this.#state.delete(name)
    })
  }

  async putState (name: string, state: ScheduleState): Promise<void> {
    const kept = { ...structuredClone(state), missed: state.missed.slice(0, MAX_MISSED_KEPT) }
    await this.#queue.run(async () => {
      await this.#db.transaction(async client => {
        await client.query(`INSERT INTO pgkeep.schedule_state (name, state) VALUES ($1, $2)
          ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = pg_catalog.now()`, [name, JSON.stringify(kept)])
        await this.#announce(client, name, 'state')
      })
      this.#state.set(name, kept)
    })
  }

  async pruneState (keep: Set<string>): Promise<void> {
    await this.#queue.run(async () => {
      const gone = [...this.#state.keys()].filter(name => !keep.has(name))
      if (gone.length === 0) return
      await this.#db.query('DELETE FROM pgkeep.schedule_state WHERE name = ANY($1::text[])', [gone])
      for (const name of gone) this.#state.delete(name)
    })
  }

  async flush (): Promise<void> {
    await this.#queue.run(async () => {})
  }

  watch (fn: (name: string) => void): () => void {
    this.#watchers.add(fn)
    return () => { this.#watchers.delete(fn) }
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#unlisten()
    this.#watchers.clear()
    await this.flush()
  }

  async #announce (client: Queryable, name: string, what: Change['what']): Promise<void> {
    await this.#db.notify(SCHEDULES_CHANNEL, JSON.stringify({ origin: this.#origin, name, what } satisfies Change), client)
  }

  #heard (payload: string): void {
    let change: Change
    try { change = JSON.parse(payload) as Change } catch { return }
    if (change.origin === this.#origin || this.#closed) return
    void this.#queue.run(async () => {
      if (await this.#reload(change.name)) this.#tell(change.name)
    }).catch(() => {})
  }

  /** Re-reads one schedule and its state; true when its definition changed. */
  async #reload (name: string): Promise<boolean> {
    const [def, state] = await Promise.all([
      this.#db.query<{ definition: unknown }>('SELECT definition FROM pgkeep.schedules WHERE name = $1', [name]),
      this.#db.query<{ state: ScheduleState }>('SELECT state FROM pgkeep.schedule_state WHERE name = $1', [name]),
    ])
    if (state.rows[0]) this.#state.set(name, state.rows[0].state)
    else this.#state.delete(name)
    const before = this.#schedules.get(name)
    const after = def.rows[0] && checked(def.rows[0].definition, name, this.path)
    if (after) this.#schedules.set(name, after)
    else this.#schedules.delete(name)
    return !isDeepStrictEqual(before, after)
  }

  async #reloadAll (): Promise<void> {
    const [defs, states] = await Promise.all([
      this.#db.query<{ name: string, definition: unknown }>('SELECT name, definition FROM pgkeep.schedules ORDER BY name'),
      this.#db.query<{ name: string, state: ScheduleState }>('SELECT name, state FROM pgkeep.schedule_state'),
    ])
    const before = this.#schedules
    this.#schedules = new Map(defs.rows.map(r => [r.name, checked(r.definition, r.name, this.path)]))
    this.#state = new Map(states.rows.map(r => [r.name, r.state]))
    for (const name of new Set([...before.keys(), ...this.#schedules.keys()])) {
      if (!isDeepStrictEqual(before.get(name), this.#schedules.get(name))) this.#tell(name)
    }
  }

  #tell (name: string): void {
    for (const fn of this.#watchers) fn(name)
  }
}

/** A row written by hand (or by a newer pgkeep) that is not a schedule stops the start, as a bad schedules.json does. */
function checked (definition: unknown, name: string, where: string): StoredSchedule {
  if (!checkSchedule.Check(definition)) throw new PgkeepError('CONFIG_INVALID', `schedule "${name}" in ${where} is not a valid schedule; fix or remove that row`)
  return definition
}
