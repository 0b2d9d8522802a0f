/** Owns the WebSocket: reconnects with backoff, resyncs from `snapshot`, tracks active jobs. */
import type { Backup, BackupStatus, Progress } from '../../../schemas/backup.ts'
import type { ServerEvent } from '../../../schemas/events.ts'
import type { RestoreState } from '../../../schemas/restore.ts'
import type { Drill } from '../../../schemas/drill.ts'
import { api } from './api.ts'
import { toasts } from './toasts.svelte.ts'
import { session } from './session.svelte.ts'

export type ConnectionState = 'connecting' | 'online' | 'offline'
export interface LogLine { line: string, at: string }
export interface JobWarning { code: string, message: string, at: string }
export interface Job { backup: Backup, progress?: Progress, log: LogLine[], warnings?: JobWarning[] }

const TERMINAL: readonly BackupStatus[] = ['completed', 'failed', 'cancelled']
const LOG_LINES_KEPT = 300
const MAX_BACKOFF_MS = 10_000

export function isTerminal (status: BackupStatus): boolean {
  return TERMINAL.includes(status)
}

class Live {
  state = $state<ConnectionState>('offline')
  /** active jobs, plus finished ones until dismissed, so a card turns into its final state in place */
  jobs = $state<Record<string, Job>>({})
  /** bumps on created/status/deleted so lists know to refresh */
  revision = $state(0)
  /** restores seen since this page loaded, by restore id; their last state (running or how they ended) */
  restores = $state<Record<string, RestoreState>>({})
  /** drills seen on the socket since this page loaded, by id: their newest state (DrillsPage) */
  drills = $state<Record<string, Drill>>({})

  #ws: WebSocket | undefined
  #attempt = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #wanted = false

  connect (): void {
    this.#wanted = true
    if (this.#ws) return
    this.state = 'connecting'
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/backup/ws`
    const ws = new WebSocket(url)
    this.#ws = ws
    ws.onopen = () => { this.#attempt = 0; this.state = 'online' }
    ws.onmessage = (m) => {
      try { this.#apply(JSON.parse(String(m.data)) as ServerEvent) } catch { /* a malformed frame must not kill the stream */ }
    }
    ws.onclose = () => {
      this.#ws = undefined
      this.state = 'offline'
      if (this.#wanted) this.#scheduleReconnect()
    }
  }

  disconnect (): void {
    this.#wanted = false
    clearTimeout(this.#timer)
    this.#ws?.close()
    this.#ws = undefined
    this.state = 'offline'
  }

  dismiss (id: string): void {
    delete this.jobs[id]
  }

  /** Records a restore this page started, so its card shows before the first event (or if events were missed). */
  trackRestore (state: RestoreState): void {
    // its own events may have come first and be further along already
    this.restores[state.restoreId] ??= state
  }

  #scheduleReconnect (): void {
    // full jitter so many dashboards don't stampede a restarting server
    const cap = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.#attempt++)
    const delay = 250 + Math.random() * cap
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      // the session may have expired while we were away: a 401 here means log in again, not retry forever
      api.me().then(() => this.connect(), (err: { statusCode?: number }) => {
        if (err.statusCode === 401) session.expired()
        else if (this.#wanted) this.#scheduleReconnect()
      })
    }, delay)
  }

  #apply (e: ServerEvent): void {
    switch (e.type) {
      case 'snapshot':
        this.#resync(e.jobs); this.#resyncRestores(e.restores ?? [])
        for (const d of e.drills ?? []) this.drills[d.id] = d
        break
      case 'created':
        this.jobs[e.backupId] ??= { backup: e.backup, log: [] }
        this.revision++
        break
      case 'status': this.#setBackup(e.backup); this.revision++; break
      case 'progress': {
        const job = this.jobs[e.backupId]
        if (!job) break
        const { type: _type, ...progress } = e
        job.progress = progress
        break
      }
      case 'log': {
        const job = this.jobs[e.backupId]
        if (!job) break
        job.log.push({ line: e.line, at: e.at })
        if (job.log.length > LOG_LINES_KEPT) job.log.splice(0, job.log.length - LOG_LINES_KEPT)
        break
      }
      case 'warning': {
        const job = this.jobs[e.backupId]
        if (!job) break
        job.warnings = [...(job.warnings ?? []).filter(w => w.code !== e.code), { code: e.code, message: e.message, at: e.at }]
        break
      }
      case 'deleted': delete this.jobs[e.backupId]; this.revision++; break
      case 'restore': {
        const { type: _type, ...state } = e
        this.#setRestore(state)
        break
      }
      case 'drill': {
        const { type: _type, ...drill } = e
        // an ended drill never goes back to running (a late throttled progress)
        if (this.drills[drill.id]?.status !== 'running' && this.drills[drill.id] !== undefined && drill.status === 'running') break
        this.drills[drill.id] = drill
        break
      }
    }
  }

  #setRestore (state: RestoreState): void {
    const before = this.restores[state.restoreId]
    // events can overtake the reply that told us about the restore: never step back from an end
    if (before && before.status !== 'running') return
    this.restores[state.restoreId] = state
    if (before?.status === 'running' && state.status !== 'running') notifyRestoreEnded(state)
  }

  /** Restores that ended while the socket was down are not in the snapshot: ask for how they ended. */
  #resyncRestores (running: RestoreState[]): void {
    const seen = new Set<string>()
    for (const s of running) { seen.add(s.restoreId); this.#setRestore(s) }
    for (const [id, s] of Object.entries(this.restores)) {
      if (seen.has(id) || s.status !== 'running') continue
      api.restoreState(id).then(state => this.#setRestore(state), () => {})
    }
  }

  #setBackup (backup: Backup): void {
    const job = this.jobs[backup.id]
    const before = job?.backup.status
    if (job) job.backup = backup
    else if (!isTerminal(backup.status)) this.jobs[backup.id] = { backup, log: [] }
    if (before !== backup.status && isTerminal(backup.status)) notifyFinished(backup)
  }

  /** After a reconnect: adopt the server's view, and fetch the outcome of jobs that ended while we were away. */
  #resync (active: { backup: Backup, progress?: Progress }[]): void {
    const seen = new Set<string>()
    for (const { backup, progress } of active) {
      seen.add(backup.id)
      const job = this.jobs[backup.id]
      if (job) { job.backup = backup; job.progress = progress } else this.jobs[backup.id] = { backup, progress, log: [] }
    }
    for (const [id, job] of Object.entries(this.jobs)) {
      if (seen.has(id) || isTerminal(job.backup.status)) continue
      api.backupStatus(id).then(
        ({ backup }) => this.#setBackup(backup),
        () => { delete this.jobs[id] },
      )
    }
    this.revision++
  }
}

function notifyFinished (b: Backup): void {
  if (b.status === 'completed') toasts.push('success', `Backup ${b.name} completed`)
  else if (b.status === 'cancelled') toasts.push('info', `Backup ${b.name} cancelled`)
  else toasts.push('error', `Backup ${b.name} failed`, b.error ? `${b.error.code}: ${b.error.message}` : 'No error detail was recorded.')
}

function notifyRestoreEnded (s: RestoreState): void {
  if (s.status === 'completed') toasts.push('success', `Restore into ${s.database} completed`)
  else if (s.status === 'cancelled') toasts.push('info', `Restore into ${s.database} cancelled`)
  else toasts.push('error', `Restore into ${s.database} failed`, s.error ? `${s.error.code}: ${s.error.message}` : 'No error detail was recorded.')
}

export const live = new Live()
