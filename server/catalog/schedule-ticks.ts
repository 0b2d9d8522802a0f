import type { CatalogDb, Queryable } from './catalog-db.ts'

/** A tick a missed-run sweep recorded: the latest fire time of a gap, standing for `count` fire times. */
export interface MissedTick { schedule: string, tickAt: Date, count: number }

export type FireTimes = (after: Date, until: Date) => Date[]

/** A fire this late (by the catalog's clock) after its time still counts (timer drift, a busy event loop). */
export const TICK_GRACE_MS = 2000
// a schedule's rows older than this go (its newest always stays: the next sweep starts from it)
const KEEP_TICKS = '7 days'
// one schedule's ticks are decided one at a time: a late fire and a missed-run sweep can never both win
const lockTick = async (client: Queryable, schedule: string): Promise<void> => {
  await client.query("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgkeep.schedule-tick:' || $1))", [schedule])
}

/** The tick's `fired` row for this instance, unless another instance fired it or a sweep counted it missed. */
async function takeTick (client: Queryable, schedule: string, tickAt: Date, instanceId: string): Promise<boolean> {
  await lockTick(client, schedule)
  const { rows } = await client.query(`
    INSERT INTO pgkeep.schedule_ticks (schedule, tick_at, outcome, instance_id)
    SELECT $1, $2, 'fired', $3
    WHERE NOT EXISTS (
      SELECT 1 FROM pgkeep.schedule_ticks WHERE schedule = $1 AND tick_at >= $2 AND outcome = 'missed')
    ON CONFLICT (schedule, tick_at) DO NOTHING
    RETURNING tick_at`, [schedule, tickAt, instanceId])
  return rows.length > 0
}

/**
 * Schedule ticks across instances (pgkeep.schedule_ticks). Every instance runs the same timers; the row of a tick
 * is taken by exactly one of them (the primary key on schedule + tick time), in the transaction that queues the
 * tick's job, so a tick has a job if and only if it has a `fired` row. A tick nobody fired by its time + grace,
 * because every instance that could was down or stuck, is recorded `missed` by whichever live instance sweeps
 * first, once.
 */
export class ScheduleTicks {
  readonly #db: CatalogDb
  readonly #graceMs: number

  constructor (db: CatalogDb, opts: { graceMs?: number } = {}) {
    this.#db = db
    this.#graceMs = opts.graceMs ?? TICK_GRACE_MS
  }

  /**
   * Claims a tick for this instance and, if it won, calls `enqueue` in the same transaction (queue the job with
   * the client it is given, return its id). `won: false` when another instance fired it, or a sweep already
   * counted it as missed (this fire came later than the grace allows).
   */
  async fire (schedule: string, tickAt: Date, instanceId: string, enqueue: (client: Queryable) => Promise<string>): Promise<{ won: boolean, jobId?: string }> {
    return await this.#db.transaction(async client => {
      if (!await takeTick(client, schedule, tickAt, instanceId)) return { won: false }
      const jobId = await enqueue(client)
      await client.query('UPDATE pgkeep.schedule_ticks SET job_id = $3 WHERE schedule = $1 AND tick_at = $2', [schedule, tickAt, jobId])
      return { won: true, jobId }
    })
  }

  /**
   * Claims a tick for this instance without queueing a job: the instance that wins runs the tick itself (the
   * scheduler, until its runs go through the catalog's job queue). Same rules as fire().
   */
  async claim (schedule: string, tickAt: Date, instanceId: string): Promise<boolean> {
    return await this.#db.transaction(async client => await takeTick(client, schedule, tickAt, instanceId))
  }

  /**
   * Records the fire times of `schedule` that passed (by the catalog's clock, less the grace) with no row: one
   * `missed` row for the latest, counting the gap. `since` is where to start when the schedule has no tick yet
   * (when it was created or enabled). Any number of instances may sweep at once: each gap is recorded by one.
   */
  async sweepMissed (schedule: string, fireTimes: FireTimes, since: Date, instanceId: string): Promise<MissedTick | undefined> {
    return await this.#db.transaction(async client => {
      await lockTick(client, schedule)
      const { rows } = await client.query<{ last: Date | null, until: Date }>(`
        SELECT (SELECT max(tick_at) FROM pgkeep.schedule_ticks WHERE schedule = $1) AS last,
          pg_catalog.now() - $2 * interval '1 millisecond' AS until`, [schedule, this.#graceMs])
      await client.query(`
        DELETE FROM pgkeep.schedule_ticks WHERE schedule = $1 AND tick_at < $2 AND tick_at < pg_catalog.now() - interval '${KEEP_TICKS}'`,
      [schedule, rows[0].last])
      const after = rows[0].last ?? since
      const due = fireTimes(after, rows[0].until).filter(t => t > after && t <= rows[0].until)
      if (due.length === 0) return undefined
      const latest = due.reduce((a, b) => (b > a ? b : a))
      await client.query(`
        INSERT INTO pgkeep.schedule_ticks (schedule, tick_at, outcome, instance_id, missed_count)
        VALUES ($1, $2, 'missed', $3, $4)`, [schedule, latest, instanceId, due.length])
      return { schedule, tickAt: latest, count: due.length }
    })
  }

  async ticks (schedule: string): Promise<Array<{ tickAt: Date, outcome: 'fired' | 'missed', instanceId: string, jobId: string | null, missedCount: number | null }>> {
    const { rows } = await this.#db.query('SELECT * FROM pgkeep.schedule_ticks WHERE schedule = $1 ORDER BY tick_at', [schedule])
    return rows.map(r => ({ tickAt: r.tick_at, outcome: r.outcome, instanceId: r.instance_id, jobId: r.job_id, missedCount: r.missed_count }))
  }
}
