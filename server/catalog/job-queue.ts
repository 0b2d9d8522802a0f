import type pg from 'pg'
import type { CatalogDb, Queryable } from './catalog-db.ts'

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted'
export type FinalJobState = Exclude<JobState, 'queued' | 'running'>

export interface JobError { code: string, message: string }

/** A row of pgkeep.jobs. */
export interface CatalogJob {
  /** the backup, restore or drill id the job runs */
  id: string
  kind: string
  payload: unknown
  state: JobState
  /** the instance that claimed it last */
  instanceId: string | null
  leaseExpiresAt: Date | null
  cancelRequested: boolean
  /** how many times it was claimed (1 on a normal run) */
  attempt: number
  error: JobError | null
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
}

export interface NewJob { id: string, kind: string, payload?: unknown }

/** Idle workers wake on this (payload: the job id) instead of waiting for their next poll. */
export const JOBS_CHANNEL = 'pgkeep_jobs'
/** A cancel for a running job (payload: its id): the instance running it aborts it. */
export const CANCEL_CHANNEL = 'pgkeep_cancel'

const INTERRUPTED: JobError = { code: 'INTERRUPTED', message: 'the instance running this job stopped renewing its lease (it died, or lost the catalog)' }
/** a clean-up that keeps failing is given up after this many tries rather than retried forever */
const CLEANUP_TRIES = 3

const ms = (n: number): string => `${Math.max(0, Math.round(n))} * interval '1 millisecond'`

function toJob (r: pg.QueryResultRow): CatalogJob {
  return {
    id: r.id,
    kind: r.kind,
    payload: r.payload,
    state: r.state,
    instanceId: r.instance_id,
    leaseExpiresAt: r.lease_expires_at,
    cancelRequested: r.cancel_requested,
    attempt: r.attempt,
    error: r.error,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }
}

const bySeq = (rows: pg.QueryResultRow[]): CatalogJob[] => [...rows].sort((a, b) => Number(a.seq) - Number(b.seq)).map(toJob)

/**
 * The statements of the shared queue (pgkeep.jobs). Every rule that must hold across instances is in the SQL:
 * a claim takes rows no one else holds (FOR UPDATE SKIP LOCKED), only the lease holder can finish a job, and a
 * job's lease is expired by exactly one instance (the UPDATE that flips `running` wins; the others find it gone).
 * JobWorker (job-worker.ts) drives these; nothing here keeps state between calls.
 */
export class CatalogJobQueue {
  readonly #db: CatalogDb

  constructor (db: CatalogDb) {
    this.#db = db
  }

  /**
   * Queues a job and wakes idle workers. With `client` (a transaction's), the row and the wake-up are committed
   * together, e.g. with the schedule tick that queued it.
   */
  async enqueue (job: NewJob, client?: Queryable): Promise<CatalogJob> {
    const sql = 'INSERT INTO pgkeep.jobs (id, kind, payload) VALUES ($1, $2, $3) RETURNING *'
    const values = [job.id, job.kind, JSON.stringify(job.payload ?? {})]
    const { rows } = client !== undefined ? await client.query(sql, values) : await this.#db.query(sql, values)
    await this.#db.notify(JOBS_CHANNEL, job.id, client)
    return toJob(rows[0])
  }

  /**
   * Up to `max` queued jobs, oldest first, now running on `instanceId` under a lease of leaseMs; with `onlyIds`,
   * only among those (a CLI process runs the jobs it queued, never a server's).
   */
  async claim (instanceId: string, max: number, leaseMs: number, onlyIds?: readonly string[]): Promise<CatalogJob[]> {
    if (max <= 0 || onlyIds?.length === 0) return []
    const { rows } = await this.#db.query(`
      UPDATE pgkeep.jobs j
      SET state = 'running', instance_id = $1, attempt = j.attempt + 1,
        started_at = pg_catalog.now(), lease_expires_at = pg_catalog.now() + ${ms(leaseMs)}
      FROM (
        SELECT id FROM pgkeep.jobs WHERE state = 'queued' AND ($3::text[] IS NULL OR id = ANY($3::text[]))
        ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED
      ) claimed
      WHERE j.id = claimed.id
      RETURNING j.*`, [instanceId, max, onlyIds === undefined ? null : [...onlyIds]])
    return bySeq(rows)
  }

  /**
   * Extends the lease of every job this instance holds, running ones and the interrupted ones it is cleaning up.
   * The reply is what the catalog says this instance holds: a job missing from it was taken away (its lease
   * expired and another instance marked it interrupted), and cancelRequested catches a cancel whose NOTIFY was
   * lost while the LISTEN connection was down. An expired lease is renewed too: nobody has taken the job yet.
   */
  async renewLeases (instanceId: string, leaseMs: number): Promise<Array<{ id: string, cancelRequested: boolean }>> {
    const { rows } = await this.#db.query<{ id: string, cancel_requested: boolean }>(`
      UPDATE pgkeep.jobs SET lease_expires_at = pg_catalog.now() + ${ms(leaseMs)}
      WHERE (state = 'running' AND instance_id = $1)
         OR (state = 'interrupted' AND cleaner_id = $1 AND cleaned_at IS NULL AND lease_expires_at > pg_catalog.now())
      RETURNING id, cancel_requested`, [instanceId])
    return rows.map(r => ({ id: r.id, cancelRequested: r.cancel_requested }))
  }

  /**
   * Ends a job this instance runs. false when it no longer holds it (marked interrupted after its lease ran out):
   * the late result is dropped, the interruption stands, and its clean-up has been or will be done elsewhere.
   */
  async finish (id: string, instanceId: string, state: FinalJobState, error?: JobError): Promise<boolean> {
    const { rowCount } = await this.#db.query(`
      UPDATE pgkeep.jobs SET state = $3, error = $4, finished_at = pg_catalog.now(), lease_expires_at = NULL
      WHERE id = $1 AND instance_id = $2 AND state = 'running'`,
    [id, instanceId, state, error === undefined ? null : JSON.stringify(error)])
    return rowCount === 1
  }

  /**
   * A queued job is cancelled on the spot; a running one is flagged and its instance told through NOTIFY (sent at
   * commit). A job being claimed at this moment is waited for (its row is locked) and then counts as running.
   */
  async requestCancel (id: string): Promise<'dequeued' | 'requested' | 'not-active'> {
    return await this.#db.transaction(async client => {
      const { rows } = await client.query<{ state: JobState }>(`
        UPDATE pgkeep.jobs SET cancel_requested = true,
          state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
          finished_at = CASE WHEN state = 'queued' THEN pg_catalog.now() ELSE finished_at END,
          error = CASE WHEN state = 'queued' THEN '{"code":"CANCELLED","message":"cancelled while queued"}'::jsonb ELSE error END
        WHERE id = $1 AND state IN ('queued', 'running')
        RETURNING state`, [id])
      if (rows.length === 0) return 'not-active'
      if (rows[0].state === 'cancelled') return 'dequeued'
      await this.#db.notify(CANCEL_CHANNEL, id, client)
      return 'requested'
    })
  }

  /**
   * Marks INTERRUPTED every running job whose lease has run out, and hands them to `cleanerId` to clean up under a
   * fresh lease; a cleaner that died half-way has its jobs handed on the same way, at most CLEANUP_TRIES times.
   * Right after a catalog restart nothing expires until the catalog has been up for one lease: the instances
   * could not renew while it was down, and must get their chance before anyone calls them dead.
   */
  async expireLeases (cleanerId: string, leaseMs: number): Promise<CatalogJob[]> {
    const { rows } = await this.#db.query(`
      UPDATE pgkeep.jobs j
      SET state = 'interrupted', error = coalesce(j.error, $2::jsonb), finished_at = coalesce(j.finished_at, pg_catalog.now()),
        cleaner_id = $1, cleanup_attempts = j.cleanup_attempts + 1, lease_expires_at = pg_catalog.now() + ${ms(leaseMs)}
      FROM (
        SELECT id FROM pgkeep.jobs
        WHERE lease_expires_at < pg_catalog.now()
          AND (state = 'running' OR (state = 'interrupted' AND cleaned_at IS NULL AND cleanup_attempts < ${CLEANUP_TRIES}))
          AND pg_catalog.pg_postmaster_start_time() < pg_catalog.now() - ${ms(leaseMs)}
        FOR UPDATE SKIP LOCKED
      ) expired
      WHERE j.id = expired.id
      RETURNING j.*`, [cleanerId, JSON.stringify(INTERRUPTED)])
    return bySeq(rows)
  }

  /** The clean-up of an interrupted job is done (or given up: `error` says why), so nobody retries it. */
  async markCleaned (id: string, cleanerId: string): Promise<void> {
    await this.#db.query(`
      UPDATE pgkeep.jobs SET cleaned_at = pg_catalog.now(), lease_expires_at = NULL
      WHERE id = $1 AND cleaner_id = $2 AND cleaned_at IS NULL`, [id, cleanerId])
  }

  /** A clean-up that failed: its lease ends now, so a later sweep (any instance's) tries again. */
  async releaseCleanup (id: string, cleanerId: string): Promise<void> {
    await this.#db.query(`
      UPDATE pgkeep.jobs SET lease_expires_at = pg_catalog.now()
      WHERE id = $1 AND cleaner_id = $2 AND cleaned_at IS NULL`, [id, cleanerId])
  }

  /**
   * Deletes ended jobs older than `keepDays` (the registry keeps the history of every backup; this table only has
   * to know about live work and recent ends). Interrupted jobs still owed a clean-up stay.
   */
  async pruneEnded (keepDays: number): Promise<number> {
    const { rowCount } = await this.#db.query(`
      DELETE FROM pgkeep.jobs
      WHERE state IN ('done', 'failed', 'cancelled', 'interrupted') AND finished_at < pg_catalog.now() - $1 * interval '1 day'
        AND (state <> 'interrupted' OR cleaned_at IS NOT NULL OR cleanup_attempts >= ${CLEANUP_TRIES})`, [keepDays])
    return rowCount ?? 0
  }

  async get (id: string): Promise<CatalogJob | undefined> {
    const { rows } = await this.#db.query('SELECT * FROM pgkeep.jobs WHERE id = $1', [id])
    return rows[0] === undefined ? undefined : toJob(rows[0])
  }

  /** Which of these jobs some instance still owes work: queued, running, or interrupted and not yet cleaned up. */
  async activeAmong (ids: readonly string[]): Promise<Set<string>> {
    const { rows } = await this.#db.query<{ id: string }>(`
      SELECT id FROM pgkeep.jobs WHERE id = ANY($1::text[])
        AND (state IN ('queued', 'running') OR (state = 'interrupted' AND cleaned_at IS NULL AND cleanup_attempts < ${CLEANUP_TRIES}))`, [[...ids]])
    return new Set(rows.map(r => r.id))
  }

  /** Queue depth and leases held, for readiness and /metrics. */
  async depth (): Promise<{ queued: number, running: number }> {
    const { rows } = await this.#db.query<{ queued: number, running: number }>(`
      SELECT count(*) FILTER (WHERE state = 'queued')::integer AS queued, count(*) FILTER (WHERE state = 'running')::integer AS running
      FROM pgkeep.jobs WHERE state IN ('queued', 'running')`)
    return rows[0]
  }
}
