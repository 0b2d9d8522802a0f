import type { Target } from '../../config.ts'
import { withTargetClient } from './connection.ts'

/**
 * Watches how long a running dump's snapshot has held back the xmin horizon (its transaction's age while the
 * backend still holds an xmin): rows deleted or updated since cannot be vacuumed anywhere in the database for
 * that long, so tables bloat behind a long dump. Calls `onHeld` once, when the age passes `thresholdMs`. A poll
 * that fails (the dump's backend is gone, the server is busy) is skipped: this is advice, never a failure.
 */
export function watchXminHorizon (target: Target, appName: string, thresholdMs: number, onHeld: (heldMs: number) => void): { stop: () => void } {
  let warned = false
  let polling = false
  const poll = async (): Promise<void> => {
    if (warned || polling) return
    polling = true
    try {
      const heldMs = await withTargetClient(target, async c => {
        const { rows } = await c.query<{ held: number | null }>(
          `SELECT (extract(epoch FROM pg_catalog.now() - min(xact_start)) * 1000)::pg_catalog.float8 AS held
             FROM pg_catalog.pg_stat_activity WHERE application_name = $1 AND backend_xmin IS NOT NULL`, [appName])
        return rows[0]?.held ?? 0
      })
      if (!warned && heldMs >= thresholdMs) {
        warned = true
        onHeld(heldMs)
      }
    } catch {
      // the next poll tries again
    } finally {
      polling = false
    }
  }
  // often enough to warn within a small fraction of the threshold, never more than twice a minute
  const timer = setInterval(() => { void poll() }, Math.max(200, Math.min(30_000, thresholdMs / 4)))
  timer.unref()
  return { stop: () => { warned = true; clearInterval(timer) } }
}
