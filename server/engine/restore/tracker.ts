import type { RestoreMode, RestoreState } from '../../../schemas/restore.ts'
import { InvalidStateError, NotFoundError, toPgkeepError } from '../../errors.ts'
import type { RestoreJob, RestoreProgress } from './restore-job.ts'

interface Tracked {
  state: RestoreState
  job: RestoreJob
  /** resolves once the final state is recorded and announced */
  ended: Promise<RestoreState>
  expiry?: NodeJS.Timeout
}

/** How long a finished restore can still be looked up: long enough for a viewer who looked away. */
export const RESTORE_KEEP_MS = 10 * 60_000

/**
 * The state of every restore job, for readers who were not listening when it changed: running ones,
 * and finished ones for `keepMs`. Every change goes to `announce` (the service's 'restore' event).
 */
export class RestoreTracker {
  private readonly tracked = new Map<string, Tracked>()

  constructor (private readonly announce: (s: RestoreState) => void, private readonly keepMs = RESTORE_KEEP_MS) {}

  track (job: RestoreJob, backupId: string, database: string, mode: RestoreMode): RestoreState {
    const entry = {
      state: { restoreId: job.id, backupId, database, mode, status: 'running', at: new Date().toISOString() },
      job,
    } as Tracked
    this.tracked.set(job.id, entry)
    const update = (fields: Partial<RestoreState>): RestoreState => {
      entry.state = { ...entry.state, ...fields, at: new Date().toISOString() }
      this.announce(entry.state)
      return entry.state
    }
    job.on('progress', (p: RestoreProgress) => {
      // a progress the meter sends while the job is being stopped must not reopen an ended state
      if (entry.state.status === 'running') update({ progress: p })
    })
    entry.ended = job.done.then(
      () => update({ status: 'completed' }),
      (err: unknown) => {
        const e = toPgkeepError(err)
        return update({ status: e.code === 'CANCELLED' ? 'cancelled' : 'failed', error: { code: e.code, message: e.message } })
      },
    ).finally(() => {
      entry.expiry = setTimeout(() => this.tracked.delete(job.id), this.keepMs)
      entry.expiry.unref()
    })
    this.announce(entry.state)
    return entry.state
  }

  /** An ended restore known from elsewhere (one a crash interrupted, settled at start-up): readable for keepMs. */
  remember (state: RestoreState): void {
    const expiry = setTimeout(() => this.tracked.delete(state.restoreId), this.keepMs)
    expiry.unref()
    const job = { cancel: async () => {} } as unknown as RestoreJob
    this.tracked.set(state.restoreId, { state, job, ended: Promise.resolve(state), expiry })
  }

  state (id: string): RestoreState {
    const entry = this.tracked.get(id)
    if (!entry) throw new NotFoundError(`restore ${id}`)
    return entry.state
  }

  active (): RestoreState[] {
    return [...this.tracked.values()].filter(e => e.state.status === 'running').map(e => e.state)
  }

  /** Stops a running restore and resolves with its final state (cancelled, or whatever it reached first). */
  async cancel (id: string): Promise<RestoreState> {
    const entry = this.tracked.get(id)
    if (!entry) throw new NotFoundError(`restore ${id}`)
    if (entry.state.status !== 'running') throw new InvalidStateError(`restore ${id} is already ${entry.state.status}`)
    await entry.job.cancel()
    return await entry.ended
  }

  /** Cancels every running restore (shutdown) and forgets them all. */
  async close (): Promise<void> {
    await Promise.all([...this.tracked.values()].map(async e => {
      await e.job.cancel().catch(() => {})
      await e.ended
      clearTimeout(e.expiry)
    }))
    for (const e of this.tracked.values()) clearTimeout(e.expiry)
    this.tracked.clear()
  }
}
