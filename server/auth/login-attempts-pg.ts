import type { CatalogDb } from '../catalog/catalog-db.ts'

/** One more attempt under key: whether the window's limit is now passed, and when the window ends. */
export interface LoginAttemptCounter {
  hit (key: string, max: number, windowMs: number): Promise<{ exceeded: boolean, ttlSeconds: number }>
}

// windows long over are swept now and then, not on every attempt: a guesser's keys would otherwise stay forever
const SWEEP_EVERY = 100

/**
 * Login attempts counted in the shared catalog (pgkeep.login_attempts), so attempts spread over several
 * instances are limited together. A fixed window per key, as @fastify/rate-limit's own store keeps it; one
 * UPSERT per attempt, timed by the catalog's clock so instances with skewed clocks agree on the window.
 */
export class PgLoginAttempts implements LoginAttemptCounter {
  #hits = 0

  constructor (private readonly db: CatalogDb) {}

  async hit (key: string, max: number, windowMs: number): Promise<{ exceeded: boolean, ttlSeconds: number }> {
    if (++this.#hits % SWEEP_EVERY === 0) await this.db.query('DELETE FROM pgkeep.login_attempts WHERE window_ends < pg_catalog.now()')
    const { rows } = await this.db.query<{ hits: number, ttl: number }>(`
      INSERT INTO pgkeep.login_attempts AS a (key, hits, window_ends)
        VALUES ($1, 1, pg_catalog.now() + $2 * interval '1 millisecond')
      ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN a.window_ends <= pg_catalog.now() THEN 1 ELSE a.hits + 1 END,
        window_ends = CASE WHEN a.window_ends <= pg_catalog.now() THEN excluded.window_ends ELSE a.window_ends END
      RETURNING hits, ceil(extract(epoch FROM window_ends - pg_catalog.now()))::integer AS ttl`, [key, windowMs])
    return { exceeded: rows[0].hits > max, ttlSeconds: Math.max(1, rows[0].ttl) }
  }
}
