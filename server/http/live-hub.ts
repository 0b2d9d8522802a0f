import { ROLES, type Role } from '../../schemas/auth.ts'
import type { Backup, BackupWithProgress, Progress } from '../../schemas/backup.ts'
import type { ServerEvent } from '../../schemas/events.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { Drill } from '../../schemas/drill.ts'
import { TERMINAL_STATUSES } from '../../schemas/backup.ts'
import type { BackupEventMap, BackupEvents } from '../engine/backup-events.ts'
import { PROGRESS_PACE_MS } from '../engine/dump/progress-feed.ts'

/** What the hub needs from a socket: the `ws` WebSocket fits as is. */
export interface LiveClient {
  readonly bufferedAmount: number
  readonly readyState: number
  send (data: Buffer, options: { binary: false }): void
  /**
   * writes a message already framed (textFrame) to the socket beneath, as ws would after framing it: one frame
   * built per event for every viewer, instead of ws framing the same bytes again for each (bench/ws-fanout.ts)
   */
  write?: (frame: Buffer) => void
  terminate (): void
  /** hold writes until uncork (the TCP socket beneath), so that several events leave in one write */
  cork?: () => void
  uncork?: () => void
}

/** What the hub needs of BackupService: its events, and who is active for a viewer's first snapshot. */
export interface LiveSource extends Pick<BackupEvents, 'on' | 'off'> {
  active (): BackupWithProgress[]
  activeRestores (): RestoreState[]
  activeDrills?: () => Drill[]
}

export interface LiveHubOptions {
  /** a client whose unsent bytes exceed this has stopped reading: it is dropped rather than buffered for */
  maxBufferedBytes?: number
  /** a client with more unsent bytes than this is behind: its progress is held (the newest per job) until it catches up */
  behindBytes?: number
  /** minimum gap between two progress events of one job: the one place progress is throttled (a dump's feed reports at this pace) */
  progressIntervalMs?: number
  /**
   * the gap grows by this much per viewer beyond the first 400 (see progressGapMs): on loopback each write to a
   * viewer costs the server ~13 us of kernel time, whatever the hub does, so with a large audience fewer progress
   * updates keep the dump's share of the CPU (bench/hub-send.ts, bench/ws-fanout.ts)
   */
  progressMsPerViewer?: number
}

const OPEN = 1
/** up to this many viewers, progress goes at the configured rate (the latency target is for 200) */
const VIEWERS_AT_FULL_RATE = 400

/**
 * An unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), as a server sends it: FIN + opcode 1, the
 * payload length in 7, 7+16 or 7+64 bits, the payload. Built once per event whatever the number of viewers.
 */
export function textFrame (payload: Buffer): Buffer {
  const n = payload.length
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + n)
  frame[0] = 0x81
  if (n < 126) {
    frame[1] = n
  } else if (n < 65_536) {
    frame[1] = 126
    frame.writeUInt16BE(n, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(n), 2)
  }
  payload.copy(frame, head)
  return frame
}

/** An event's bytes: the JSON, and its frame once a viewer that takes frames needs it. */
class Encoded {
  #frame?: Buffer
  constructor (readonly data: Buffer) {}
  get frame (): Buffer { return (this.#frame ??= textFrame(this.data)) }
}

/**
 * The least role that may see an event: what the HTTP API shows that role, no more. Restores (their
 * database names and errors) are admin-only there (routes/restores.ts), so they are here.
 */
export function audienceOf (event: ServerEvent): Role {
  return event.type === 'restore' ? 'admin' : 'viewer'
}

const mayRead = (role: Role, audience: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(audience)

interface Viewer {
  role: Role
  /** per job, the newest progress this viewer was too far behind to take, encoded */
  held?: Map<string, { data: Encoded, audience: Role }>
}

interface JobThrottle {
  lastSentAt: number
  /** serialized only if it is still the newest when its turn comes */
  pending?: ServerEvent
  timer?: NodeJS.Timeout
}

/**
 * Fans engine events out to WebSocket viewers. Each event is serialized once and the same bytes go to
 * every client. Progress is coalesced per viewer: one whose socket is behind (unsent bytes above
 * `behindBytes`) skips progress, keeping only the newest per job, which it gets once it catches up or
 * just before the status that ends the job; every other event (status, created, deleted, log) is still
 * sent to it. Only a client that stopped reading (unsent bytes above `maxBufferedBytes`) is terminated:
 * waiting for it would mean buffering without bound or slowing the emitter, and the emitter is the dump.
 */
export class LiveHub {
  /** every viewer and the role it currently holds (re-checked by the WebSocket route) */
  readonly #clients = new Map<LiveClient, Viewer>()
  readonly #throttles = new Map<string, JobThrottle>()
  readonly #maxBuffered: number
  readonly #behind: number
  readonly #interval: number
  readonly #perViewer: number
  readonly #source: LiveSource
  readonly #detach: () => void
  /** clients written to in this turn of the event loop, uncorked together at its end */
  readonly #corked = new Set<LiveClient>()
  #uncorkScheduled = false

  constructor (source: LiveSource, options: LiveHubOptions = {}) {
    this.#source = source
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024
    this.#behind = Math.min(options.behindBytes ?? 64 * 1024, this.#maxBuffered)
    this.#interval = options.progressIntervalMs ?? PROGRESS_PACE_MS
    this.#perViewer = options.progressMsPerViewer ?? 4 / 3
    const onCreated = (backup: Backup): void => this.#broadcast({ type: 'created', backupId: backup.id, backup })
    const onStatus = (backup: Backup): void => {
      // the last progress of a job must reach viewers before the status that ends it
      this.#flushProgress(backup.id)
      if (TERMINAL_STATUSES.includes(backup.status)) this.#releaseHeld(backup.id)
      this.#broadcast({ type: 'status', backupId: backup.id, status: backup.status, backup })
      if (TERMINAL_STATUSES.includes(backup.status)) this.#forget(backup.id)
    }
    const onProgress = (p: Progress): void => this.#progress(p)
    const onLog = (...[e]: BackupEventMap['log']): void => this.#broadcast({ ...e, type: 'log' })
    const onWarning = (...[e]: BackupEventMap['warning']): void => this.#broadcast({ ...e, type: 'warning' })
    const onDeleted = (...[e]: BackupEventMap['deleted']): void => {
      this.#forget(e.backupId)
      this.#broadcast({ type: 'deleted', backupId: e.backupId })
    }
    source.on('created', onCreated)
    source.on('status', onStatus)
    source.on('progress', onProgress)
    source.on('log', onLog)
    source.on('warning', onWarning)
    source.on('deleted', onDeleted)
    const onRestore = (s: RestoreState): void => this.#restore(s)
    source.on('restore', onRestore)
    const onDrill = (d: Drill): void => this.#drill(d)
    source.on('drill', onDrill)
    this.#detach = () => {
      source.off('drill', onDrill)
      source.off('restore', onRestore)
      source.off('created', onCreated)
      source.off('status', onStatus)
      source.off('progress', onProgress)
      source.off('log', onLog)
      source.off('warning', onWarning)
      source.off('deleted', onDeleted)
    }
  }

  /**
   * Registers a viewer holding `role` and sends it the snapshot of active jobs (only what that role may see);
   * returns the unsubscribe function.
   */
  add (client: LiveClient, role: Role): () => void {
    this.#clients.set(client, { role })
    const restores = mayRead(role, 'admin') ? this.#source.activeRestores() : []
    const drills = this.#source.activeDrills?.() ?? []
    const snapshot: ServerEvent = { type: 'snapshot', jobs: this.#source.active(), ...(restores.length > 0 ? { restores } : {}), ...(drills.length > 0 ? { drills } : {}) }
    this.#sendTo(client, new Encoded(Buffer.from(JSON.stringify(snapshot))))
    return () => { this.#clients.delete(client) }
  }

  /** A viewer's role changed (demotion, promotion): what it receives from now on follows. */
  setRole (client: LiveClient, role: Role): void {
    const viewer = this.#clients.get(client)
    if (viewer) viewer.role = role
  }

  /** Stops listening and terminates every viewer (server shutdown). */
  close (): void {
    this.#detach()
    for (const t of this.#throttles.values()) clearTimeout(t.timer)
    this.#throttles.clear()
    this.#uncorkAll()
    for (const c of this.#clients.keys()) c.terminate()
    this.#clients.clear()
  }

  #progress (p: Progress): void {
    this.#throttled(p.backupId, { type: 'progress', ...p })
  }

  /** Running states share the progress throttle (keyed apart from backups); an ending one flushes and goes at once. */
  #restore (s: RestoreState): void {
    const key = `restore:${s.restoreId}`
    const event: ServerEvent = { ...s, type: 'restore' }
    if (s.status === 'running') {
      this.#throttled(key, event)
      return
    }
    // like a backup's status: the last progress reaches viewers before the state that ends it
    this.#flushProgress(key)
    this.#releaseHeld(key)
    this.#forget(key)
    this.#broadcast(event)
  }

  /** Like a restore: running states throttled, the end flushed and sent at once. Viewers may read drills (GET /api/drills). */
  #drill (d: Drill): void {
    const key = `drill:${d.id}`
    const event: ServerEvent = { ...d, type: 'drill' }
    if (d.status === 'running') {
      this.#throttled(key, event)
      return
    }
    this.#flushProgress(key)
    this.#forget(key)
    this.#broadcast(event)
  }

  /**
   * The gap between two progress events of one job now: the configured one (5/s) up to 400 viewers, growing with
   * the audience beyond (1,000 viewers: 1 s, 1/s). Viewers still get the newest, and the last before the end.
   */
  get progressGapMs (): number {
    return Math.max(this.#interval, (this.#clients.size - VIEWERS_AT_FULL_RATE) * this.#perViewer + this.#interval)
  }

  #throttled (key: string, event: ServerEvent): void {
    let t = this.#throttles.get(key)
    if (!t) {
      t = { lastSentAt: 0 }
      this.#throttles.set(key, t)
    }
    const wait = t.lastSentAt + this.progressGapMs - Date.now()
    if (wait <= 0 && !t.timer) {
      t.lastSentAt = Date.now()
      this.#broadcast(event, key)
      return
    }
    // keep only the newest: a viewer wants where the job is, not every step it took
    t.pending = event
    if (!t.timer) {
      t.timer = setTimeout(() => this.#flushProgress(key), Math.max(wait, 0))
      t.timer.unref()
    }
  }

  #flushProgress (key: string): void {
    const t = this.#throttles.get(key)
    if (!t) return
    clearTimeout(t.timer)
    t.timer = undefined
    if (t.pending === undefined) return
    const event = t.pending
    t.pending = undefined
    t.lastSentAt = Date.now()
    this.#broadcast(event, key)
  }

  /** The job is ending: what viewers that were behind still hold of its progress goes now, before the end. */
  #releaseHeld (key: string): void {
    for (const [c, v] of this.#clients) {
      const held = v.held?.get(key)
      if (held === undefined) continue
      v.held!.delete(key)
      // a viewer demoted since keeps nothing it may no longer read
      if (mayRead(v.role, held.audience)) this.#sendTo(c, held.data)
    }
  }

  #forget (key: string): void {
    const t = this.#throttles.get(key)
    if (t) clearTimeout(t.timer)
    this.#throttles.delete(key)
    for (const v of this.#clients.values()) v.held?.delete(key)
  }

  /** `progressKey`: the event is a job's progress, which a viewer that is behind holds instead (the newest per key). */
  #broadcast (event: ServerEvent, progressKey?: string): void {
    const audience = audienceOf(event)
    // encoded once (and only if someone may read it): ws would otherwise turn the same string into bytes again for
    // every viewer, and frame it again for each
    let data: Encoded | undefined
    for (const [c, v] of this.#clients) {
      if (!mayRead(v.role, audience)) continue
      data ??= new Encoded(Buffer.from(JSON.stringify(event)))
      if (progressKey !== undefined) {
        if (c.bufferedAmount > this.#behind && c.readyState === OPEN) {
          (v.held ??= new Map()).set(progressKey, { data, audience })
          continue
        }
        // caught up: this newer one replaces whatever it held of the job
        v.held?.delete(progressKey)
      }
      this.#sendTo(c, data)
    }
  }

  #sendTo (client: LiveClient, encoded: Encoded): void {
    if (client.readyState !== OPEN) {
      this.#clients.delete(client)
      return
    }
    if (client.bufferedAmount + encoded.data.length > this.#maxBuffered) {
      this.#clients.delete(client)
      client.terminate()
      return
    }
    this.#cork(client)
    if (client.write !== undefined) client.write(encoded.frame)
    else client.send(encoded.data, { binary: false })
  }

  /**
   * A write per event and viewer is a syscall per event and viewer: pg_dump's verbose lines come in bursts of
   * dozens, and with a thousand viewers those writes cost more CPU than the dump's own pipeline. Corked until
   * the end of this turn of the loop, what a viewer gets in one turn leaves in one write.
   */
  #cork (client: LiveClient): void {
    if (client.cork === undefined || this.#corked.has(client)) return
    client.cork()
    this.#corked.add(client)
    if (this.#uncorkScheduled) return
    this.#uncorkScheduled = true
    setImmediate(() => this.#uncorkAll())
  }

  #uncorkAll (): void {
    this.#uncorkScheduled = false
    for (const c of this.#corked) c.uncork?.()
    this.#corked.clear()
  }
}
