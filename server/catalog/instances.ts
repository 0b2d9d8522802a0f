import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { CatalogDb } from './catalog-db.ts'

/** An instance's row in pgkeep.live_instances: one that heartbeated recently enough. */
export interface LiveInstance {
  id: string
  host: string
  pid: number
  version: string
  worker: boolean
  concurrency: number
  startedAt: Date
  heartbeatAt: Date
  aliveUntil: Date
  /** jobs it holds a lease on now */
  running: number
}

/**
 * One id per process, readable by an admin: host and pid say where to look, and the random part keeps a restarted
 * process that got the same pid (containers start at pid 1) from being taken for the one that died.
 */
export function newInstanceId (host: string = hostname(), pid: number = process.pid): string {
  return `${host}-${pid}-${randomBytes(3).toString('hex')}`
}

// a row nobody has heard from in a week is history, not an instance; its jobs keep their instance_id
const FORGET_AFTER = '7 days'

/**
 * The instance's presence in pgkeep.instances. heartbeat() upserts, so an instance whose row was pruned (or a
 * catalog restored from an older backup) comes back on its next beat. aliveMs is how long a beat vouches for it.
 */
export class InstanceRegistration {
  readonly #db: CatalogDb
  readonly id: string
  readonly #info: { version: string, worker: boolean, concurrency: number }

  constructor (db: CatalogDb, id: string, info: { version: string, worker: boolean, concurrency: number }) {
    this.#db = db
    this.id = id
    this.#info = info
  }

  async heartbeat (aliveMs: number): Promise<void> {
    const [host, pid] = [hostname(), process.pid]
    await this.#db.query(`
      INSERT INTO pgkeep.instances (id, host, pid, version, worker, concurrency, alive_until)
      VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.now() + $7 * interval '1 millisecond')
      ON CONFLICT (id) DO UPDATE SET heartbeat_at = pg_catalog.now(), alive_until = EXCLUDED.alive_until`,
    [this.id, host, pid, this.#info.version, this.#info.worker, this.#info.concurrency, aliveMs])
  }

  /** A clean stop: the others see at once that this instance is gone, and old rows of dead instances go. */
  async leave (): Promise<void> {
    await this.#db.query('UPDATE pgkeep.instances SET alive_until = pg_catalog.now() WHERE id = $1', [this.id])
    await this.#db.query(`DELETE FROM pgkeep.instances WHERE alive_until < pg_catalog.now() - interval '${FORGET_AFTER}'`)
  }
}

export async function liveInstances (db: CatalogDb): Promise<LiveInstance[]> {
  const { rows } = await db.query('SELECT * FROM pgkeep.live_instances ORDER BY started_at, id')
  return rows.map(r => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    version: r.version,
    worker: r.worker,
    concurrency: r.concurrency,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    aliveUntil: r.alive_until,
    running: r.running,
  }))
}
