import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import WebSocket from 'ws'
import {
  TERMINAL_STATUSES, type Backup, type BackupWithProgress, type CleanupRequest, type CleanupResult, type CreateBackupRequest,
  type ListQuery, type ListResult, type RestoreRequest,
} from '../../schemas/backup.ts'
import { ERROR_CODES, type ErrorCode } from '../../schemas/errors.ts'
import type { ServerEvent } from '../../schemas/events.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { Drill, DrillRequest } from '../../schemas/drill.ts'
import type { BackupSet, SetListQuery, SetListResult, SetRestoreRequest, SetRestoreState } from '../../schemas/sets.ts'
import { PgkeepError } from '../errors.ts'
import { writeHashed } from './write-hashed.ts'
import {
  downloadPath, type BackupApi, type BackupWatcher, type DownloadResult, type RestoreWatcher, type StartedBackup, type StartedDrill, type StartedRestore, type StartedSetRestore,
} from './backup-api.ts'
import { UsageError } from './command.ts'

const SET_POLL_MS = 1000

function asErrorCode (code: unknown): ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(code) ? code as ErrorCode : 'INTERNAL'
}

/** How to follow one job over the event socket until it ends. */
interface Following<S, E> {
  /** starts the job; its id is what events are matched against */
  start: () => Promise<{ id: string, started: S }>
  /** reads one event about the job (forwarding progress), returning the job's end when the event shows it */
  read: (e: ServerEvent, id: string) => E | undefined
  /** asks the server directly, returning the end when the job has ended */
  ask: (id: string) => Promise<E | undefined>
  /** where to look once the socket is gone and the job is not over */
  goesOn: (id: string) => string
}

/** The HTTP API of DESIGN.md, seen from a script: bearer token, JSON in and out, coded errors. */
export class RemoteBackupApi implements BackupApi {
  readonly origin: string
  private readonly base: URL
  private readonly token: string

  constructor (server: string, token: string) {
    this.base = new URL(server.endsWith('/') ? server : server + '/')
    this.origin = this.base.origin
    this.token = token
  }

  private url (path: string, query?: Record<string, unknown>): URL {
    const url = new URL(path.replace(/^\//, ''), this.base)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    return url
  }

  private async send (method: string, path: string, opts: { query?: Record<string, unknown>, body?: unknown, headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...opts.headers }
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(this.url(path, opts.query), { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
    } catch (err) {
      const cause = (err as { cause?: { code?: string, message?: string } }).cause
      throw new PgkeepError('INTERNAL', `cannot reach ${this.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`)
    }
    if (res.ok) return res
    let reply: { code?: unknown, message?: unknown } = {}
    try { reply = await res.json() as typeof reply } catch {}
    const code = typeof reply.code === 'string' ? asErrorCode(reply.code)
      : res.status === 401 ? 'UNAUTHORIZED' : res.status === 403 ? 'FORBIDDEN' : res.status === 404 ? 'NOT_FOUND' : 'INTERNAL'
    throw new PgkeepError(code, typeof reply.message === 'string' ? reply.message : `${method} ${path} answered HTTP ${res.status}`)
  }

  private async json<T> (method: string, path: string, opts: { query?: Record<string, unknown>, body?: unknown } = {}): Promise<T> {
    const res = await this.send(method, path, opts)
    return await res.json() as T
  }

  private async backupCall (method: string, path: string, body?: unknown): Promise<Backup> {
    return (await this.json<{ backup: Backup }>(method, path, { body })).backup
  }

  async list (query: ListQuery): Promise<ListResult> {
    return await this.json('GET', '/api/backup/list', { query })
  }

  async resolve (ref: string): Promise<Backup> {
    return await this.backupCall('GET', `/api/backup/resolve/${encodeURIComponent(ref)}`)
  }

  async delete (id: string): Promise<void> {
    await this.json('DELETE', `/api/backup/${encodeURIComponent(id)}`)
  }

  async status (id: string): Promise<BackupWithProgress> {
    return await this.json('GET', `/api/backup/status/${encodeURIComponent(id)}`)
  }

  async cancel (id: string): Promise<Backup> {
    return await this.backupCall('POST', `/api/backup/${encodeURIComponent(id)}/cancel`)
  }

  async validate (id: string): Promise<Backup> {
    return await this.backupCall('POST', `/api/backup/${encodeURIComponent(id)}/validate`)
  }

  async pin (id: string, pinned: boolean): Promise<Backup> {
    return await this.backupCall('POST', `/api/backup/${encodeURIComponent(id)}/pin`, { pinned })
  }

  async cleanup (req: CleanupRequest): Promise<CleanupResult> {
    return await this.json('POST', '/api/backup/cleanup', { body: req })
  }

  async create (req: CreateBackupRequest, watcher: BackupWatcher): Promise<StartedBackup> {
    const ended = (b: Backup): Backup | undefined => TERMINAL_STATUSES.includes(b.status) ? b : undefined
    const { started: backup, done } = await this.follow<Backup, Backup>({
      start: async () => {
        const b = await this.backupCall('POST', '/api/backup/create', req)
        return { id: b.id, started: b }
      },
      read: (e, id) => {
        if (e.type === 'progress' && e.backupId === id) watcher.progress(e)
        else if (e.type === 'log' && e.backupId === id) watcher.log(e.line)
        else if (e.type === 'status' && e.backupId === id) {
          watcher.status(e.backup)
          return ended(e.backup)
        } else if (e.type === 'snapshot') {
          const job = e.jobs.find(j => j.backup.id === id)
          if (job?.progress) watcher.progress(job.progress)
          return job && ended(job.backup)
        }
        return undefined
      },
      ask: async id => ended((await this.status(id)).backup),
      goesOn: id => `the backup goes on there: pgkeep status ${id} --server ${this.origin}`,
    })
    if (backup.set === undefined) return { backup, done, cancel: async () => { await this.cancel(backup.id) } }
    // a set: its members' events carry their own ids, so the set is asked for until every member ended
    const setId = backup.set.id
    const setDone = this.poll(async () => await this.getSet(setId), s => {
      if (s.progress) watcher.progress({ backupId: setId, bytes: 0, rate: 0, percent: s.progress.percent, currentTable: s.progress.currentDatabase, tablesDone: s.progress.membersDone, tablesTotal: s.progress.membersTotal })
      return TERMINAL_STATUSES.includes(s.status)
    })
    return { backup, done, setDone, cancel: async () => { await this.json('POST', `/api/sets/${encodeURIComponent(setId)}/cancel`) } }
  }

  /** Asks again every second until `ended` says so: for what has no event of its own on the socket (sets). */
  private async poll<T> (get: () => Promise<T>, ended: (t: T) => boolean): Promise<T> {
    for (;;) {
      const t = await get()
      if (ended(t)) return t
      await new Promise(resolve => setTimeout(resolve, SET_POLL_MS))
    }
  }

  async listSets (query: SetListQuery): Promise<SetListResult> {
    return await this.json('GET', '/api/sets', { query })
  }

  async getSet (id: string): Promise<BackupSet> {
    return (await this.json<{ set: BackupSet }>('GET', `/api/sets/${encodeURIComponent(id)}`)).set
  }

  async restoreSet (id: string, req: SetRestoreRequest, onChange: (s: SetRestoreState) => void): Promise<StartedSetRestore> {
    const set = await this.getSet(id)
    const { restore: state } = await this.json<{ restore: SetRestoreState }>('POST', `/api/sets/${encodeURIComponent(id)}/restore`, { body: req })
    const path = `/api/sets/restores/${encodeURIComponent(state.restoreId)}`
    const done = this.poll(async () => await this.json<SetRestoreState>('GET', path), s => { onChange(s); return s.status !== 'running' })
    return { set, state, done, cancel: async () => { await this.json('POST', `${path}/cancel`).catch(() => {}) } }
  }

  /** POST /api/backup/:id/restore, then the restore's events until it ends; the duration is as seen from here. */
  async restore (id: string, req: RestoreRequest, watcher: RestoreWatcher): Promise<StartedRestore> {
    const { backup } = await this.status(id)
    const ended = (s: RestoreState): RestoreState | undefined => s.status === 'running' ? undefined : s
    const startedAt = Date.now()
    const { started: restoreId, done } = await this.follow<string, RestoreState>({
      start: async () => {
        const { restore } = await this.json<{ restore: { id: string } }>('POST', `/api/backup/${encodeURIComponent(id)}/restore`, { body: req })
        return { id: restore.id, started: restore.id }
      },
      read: (e, rid) => {
        if (e.type !== 'restore' || e.restoreId !== rid) return undefined
        if (e.status === 'running' && e.progress) watcher.progress(e.progress)
        return ended(e)
      },
      ask: async rid => ended(await this.json<RestoreState>('GET', `/api/restore/${encodeURIComponent(rid)}`)),
      goesOn: rid => `the restore goes on there: GET /api/restore/${rid}`,
    })
    return {
      backup,
      done: done.then(s => {
        if (s.status === 'completed') return { ok: true as const, durationMs: Date.now() - startedAt, ...(s.mode ? { mode: s.mode, replaced: s.mode === 'replace' } : {}) }
        throw new PgkeepError(s.status === 'cancelled' ? 'CANCELLED' : asErrorCode(s.error?.code), s.error?.message ?? `the restore ended as ${s.status}`)
      }),
      cancel: async () => { await this.json('POST', `/api/restore/${encodeURIComponent(restoreId)}/cancel`) },
    }
  }

  /** POST /api/drills, then the drill's events until it ends. */
  async drill (req: DrillRequest, progress: (d: Drill) => void): Promise<StartedDrill> {
    const ended = (d: Drill): Drill | undefined => d.status === 'running' ? undefined : d
    const { started, done } = await this.follow<Drill, Drill>({
      start: async () => {
        const { drill } = await this.json<{ drill: Drill }>('POST', '/api/drills', { body: req })
        return { id: drill.id, started: drill }
      },
      read: (e, id) => {
        if (e.type !== 'drill' || e.id !== id) return undefined
        const { type: _type, ...d } = e
        if (d.status === 'running') progress(d)
        return ended(d)
      },
      ask: async id => ended(await this.json<Drill>('GET', `/api/drills/${encodeURIComponent(id)}`)),
      goesOn: id => `the drill goes on there: GET /api/drills/${id}`,
    })
    return { drill: started, done, cancel: async () => { await this.json('POST', `/api/drills/${encodeURIComponent(started.id)}/cancel`) } }
  }

  /**
   * Streams into `<file>.partial` and renames only once complete and (for single-file formats) the
   * sha256 matches the record. An existing .partial is resumed with Range; a 200 reply restarts it.
   */
  async download (id: string, output?: string, opts: { decrypt?: boolean } = {}): Promise<DownloadResult> {
    const { backup } = await this.status(id)
    if (backup.status !== 'completed') throw new UsageError(`backup ${backup.name} is ${backup.status}; only completed backups can be downloaded`)
    if (opts.decrypt === true) return await this.downloadDecrypted(backup, output)
    const file = downloadPath(backup, output)
    const partial = `${file}.partial`
    let have = await stat(partial).then(s => s.size, () => 0)
    // a tar made on the fly need not come out byte-identical twice, so only stored files are resumed
    if (backup.format === 'directory' || (backup.sizeBytes !== undefined && have > backup.sizeBytes)) have = 0
    let resumedFrom = 0
    if (have === 0 || have !== backup.sizeBytes) {
      const res = await this.send('GET', `/api/backup/download/${encodeURIComponent(backup.id)}`, {
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
      })
      resumedFrom = res.status === 206 ? have : 0
      if (!res.body) throw new PgkeepError('INTERNAL', 'the server sent no body')
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(partial, { flags: resumedFrom > 0 ? 'a' : 'w' }))
    } else {
      resumedFrom = have
    }
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of createReadStream(partial)) { hash.update(chunk as Buffer); bytes += (chunk as Buffer).length }
    const sha256 = hash.digest('hex')
    // directory backups arrive as a tar made on the fly: its hash is not the recorded one
    const verifiable = backup.format !== 'directory' && backup.sha256 !== undefined
    if (verifiable && sha256 !== backup.sha256) {
      throw new PgkeepError('INTEGRITY_FAILED', `downloaded file has sha256 ${sha256}, the backup record says ${backup.sha256}; ${partial} kept for inspection`)
    }
    await rename(partial, file)
    return { path: file, bytes, resumedFrom, sha256, verified: verifiable }
  }

  /**
   * Decrypted by the server, which checks the stored bytes on the way and cuts the transfer if they do not match:
   * a complete reply is the verified one. Not resumable (the decrypted bytes have no recorded checksum).
   */
  private async downloadDecrypted (backup: Backup, output?: string): Promise<DownloadResult> {
    const file = downloadPath(backup, output, true)
    const partial = `${file}.partial`
    const res = await this.send('GET', `/api/backup/download/${encodeURIComponent(backup.id)}?decrypt=true`)
    if (!res.body) throw new PgkeepError('INTERNAL', 'the server sent no body')
    const written = await writeHashed(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), partial).catch((err: unknown) => {
      throw new PgkeepError('INTEGRITY_FAILED', `the decrypted download of ${backup.name} was cut (${(err as Error).message}); nothing was kept`)
    })
    await rename(partial, file)
    return { path: file, ...written, verified: true }
  }

  /**
   * Starts a job and follows it to its end. The socket opens before the job starts so no event about it can
   * slip between the two; the server is asked directly right after the start (the job may have ended before
   * its id was known here) and again if the socket closes first.
   */
  private async follow<S, E> (f: Following<S, E>): Promise<{ started: S, done: Promise<E> }> {
    let id: string | undefined
    let settled = false
    let settle!: (end: E) => void
    let fail!: (err: unknown) => void
    const done = new Promise<E>((resolve, reject) => {
      settle = end => { settled = true; resolve(end) }
      fail = err => { settled = true; reject(err) }
    })
    const socket = await this.events((e) => {
      const end = id === undefined ? undefined : f.read(e, id)
      if (end !== undefined) settle(end)
    })
    let started: S
    try {
      ({ id, started } = await f.start())
    } catch (err) {
      socket.close()
      throw err
    }
    const jobId = id
    f.ask(jobId).then(end => { if (end !== undefined) settle(end) }, () => {})
    socket.closed.then(async () => {
      if (settled) return
      const end = await f.ask(jobId)
      // the server keeps running the job; say where to look instead of waiting forever
      if (end === undefined) fail(new PgkeepError('INTERNAL', `lost the event socket to ${this.origin}; ${f.goesOn(jobId)}`))
      else settle(end)
    }).catch(fail)
    done.then(socket.close, socket.close)
    return { started, done }
  }

  /** Opens the live event socket; resolves once it is open so no event after that moment is missed. */
  private async events (onEvent: (e: ServerEvent) => void): Promise<{ close: () => void, closed: Promise<void> }> {
    const url = this.url('/api/backup/ws')
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    // a header, like every other call: a URL ends up in proxy and server access logs
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } })
    const closed = new Promise<void>(resolve => ws.once('close', () => resolve()))
    ws.on('message', (data) => {
      try { onEvent(JSON.parse(String(data)) as ServerEvent) } catch {}
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', err => reject(new PgkeepError('INTERNAL', `cannot open the event socket at ${this.origin}: ${err.message}`)))
      ws.once('unexpected-response', (_req, res) => reject(new PgkeepError(res.statusCode === 401 ? 'UNAUTHORIZED' : 'INTERNAL', `the event socket was refused with HTTP ${res.statusCode}`)))
    })
    return { close: () => ws.close(), closed }
  }
}
