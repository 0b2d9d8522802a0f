import type pg from 'pg'
import type { Target } from '../../config.ts'
import { connectTarget, withTargetClient } from './connection.ts'

export interface CopySample {
  relid: number
  bytesProcessed: number
  tuplesProcessed: number
}

// pg_stat_progress_copy exists from PostgreSQL 14 on
const MIN_VERSION_NUM = 140000

// relid 0 is COPY (query) TO: not a table we can weigh. Oldest COPY first: with pg_dump -j the
// workers share one application_name and each runs its own COPY.
const PROGRESS_SQL = `SELECT p.relid::pg_catalog.int8 AS relid, p.bytes_processed::pg_catalog.int8 AS bytes,
    p.tuples_processed::pg_catalog.int8 AS tuples
  FROM pg_catalog.pg_stat_progress_copy p JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
  WHERE a.application_name = $1 AND p.relid <> 0 AND a.pid <> pg_catalog.pg_backend_pid()
  ORDER BY a.query_start, p.pid`

async function supportsCopyProgress (client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ num: string }>(`SELECT pg_catalog.current_setting('server_version_num') AS num`)
  return Number(rows[0].num) >= MIN_VERSION_NUM
}

async function samples (client: pg.Client, applicationName: string): Promise<CopySample[]> {
  const { rows } = await client.query<{ relid: string, bytes: string, tuples: string }>(PROGRESS_SQL, [applicationName])
  return rows.map(r => ({ relid: Number(r.relid), bytesProcessed: Number(r.bytes), tuplesProcessed: Number(r.tuples) }))
}

/** One look at how far the COPY of the backend with that application_name has got; undefined before 14 or when none runs. */
export async function readCopyProgress (target: Target, applicationName: string): Promise<CopySample | undefined> {
  return await withTargetClient(target, async (client) => {
    if (!await supportsCopyProgress(client)) return undefined
    return (await samples(client, applicationName))[0]
  })
}

/**
 * Samples COPY progress every intervalMs over ONE connection kept for the whole job (a connect per
 * poll would cost the server a fork each time). Best effort: any failure is swallowed and the
 * connection re-opened on a later tick, so a dump never fails because of its progress reporting.
 * With pg_dump -j, every running COPY is reported, one onSample call each.
 * `firstPollMs` (default intervalMs) lets a short dump end before any connection is made; a known `serverMajor`
 * (the inspector asked already) saves the version query, and below 14 the poller never connects at all.
 */
export function createCopyProgressPoller (target: Target, applicationName: string, intervalMs: number, onSample: (s: CopySample) => void,
  opts: { firstPollMs?: number, serverMajor?: number } = {}): { stop(): Promise<void> } {
  let client: pg.Client | undefined
  let supported: boolean | undefined = opts.serverMajor === undefined ? undefined : opts.serverMajor * 10000 >= MIN_VERSION_NUM
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let inFlight: Promise<void> = Promise.resolve()

  const drop = async (): Promise<void> => {
    const c = client
    client = undefined
    await c?.end().catch(() => {})
  }

  const poll = async (): Promise<void> => {
    try {
      if (client === undefined) {
        const c = await connectTarget(target)
        if (stopped) { await c.end().catch(() => {}); return }
        client = c
        supported ??= await supportsCopyProgress(c)
      }
      if (!supported) { await drop(); return }
      for (const s of await samples(client, applicationName)) {
        if (stopped) return
        try { onSample(s) } catch { /* a consumer's bug must not stop the sampling */ }
      }
    } catch {
      await drop()
    }
  }

  const schedule = (delayMs = intervalMs): void => {
    if (stopped || supported === false) return
    timer = setTimeout(() => {
      inFlight = poll().finally(schedule)
    }, delayMs)
    // progress sampling alone must never keep the process alive
    timer.unref()
  }
  schedule(opts.firstPollMs ?? intervalMs)

  return {
    async stop () {
      stopped = true
      if (timer) clearTimeout(timer)
      await inFlight
      await drop()
    },
  }
}
