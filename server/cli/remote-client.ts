import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import WebSocket from 'ws'
import type { Backup, BackupWithProgress, CleanupRequest, CleanupResult, CreateBackupRequest, ListQuery, ListResult } from '../../schemas/backup.ts'
import { ERROR_CODES, type ErrorCode } from '../../schemas/errors.ts'
import type { ServerEvent } from '../../schemas/events.ts'
import { PgkeepError } from '../errors.ts'

function asErrorCode (code: unknown): ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(code) ? code as ErrorCode : 'INTERNAL'
}

/** Routes answer either the record itself or {backup}; accept both so the CLI does not pin the envelope. */
function unwrapBackup (body: unknown): Backup {
  const b = body as { backup?: Backup }
  return b && typeof b === 'object' && b.backup ? b.backup : body as Backup
}

export interface DownloadResult { path: string, bytes: number, resumedFrom: number, sha256: string, verified: boolean }

/** The HTTP API of DESIGN.md, seen from a script: bearer token, JSON in and out, coded errors. */
export class RemoteClient {
  readonly base: URL
  private readonly token: string

  constructor (server: string, token: string) {
    this.base = new URL(server.endsWith('/') ? server : server + '/')
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
      throw new PgkeepError('INTERNAL', `cannot reach ${this.base.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`)
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

  async list (query: ListQuery): Promise<ListResult> {
    return await this.json('GET', '/api/backup/list', { query })
  }

  async create (req: CreateBackupRequest): Promise<Backup> {
    return unwrapBackup(await this.json('POST', '/api/backup/create', { body: req }))
  }

  async status (id: string): Promise<BackupWithProgress> {
    const body = await this.json<BackupWithProgress | Backup>('GET', `/api/backup/status/${encodeURIComponent(id)}`)
    return 'backup' in body ? body : { backup: body }
  }

  async cancel (id: string): Promise<Backup> {
    return unwrapBackup(await this.json('POST', `/api/backup/${encodeURIComponent(id)}/cancel`))
  }

  async validate (id: string): Promise<Backup> {
    return unwrapBackup(await this.json('POST', `/api/backup/${encodeURIComponent(id)}/validate`))
  }

  async pin (id: string, pinned: boolean): Promise<Backup> {
    return unwrapBackup(await this.json('POST', `/api/backup/${encodeURIComponent(id)}/pin`, { body: { pinned } }))
  }

  async cleanup (req: CleanupRequest): Promise<CleanupResult> {
    return await this.json('POST', '/api/backup/cleanup', { body: req })
  }

  /**
   * Streams into `<file>.partial` and renames only once complete and (for single-file formats) the
   * sha256 matches the record. An existing .partial is resumed with Range; a 200 reply restarts it.
   */
  async download (backup: Backup, file: string): Promise<DownloadResult> {
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

  /** Opens the live event socket; resolves once it is open so no event after that moment is missed. */
  async events (onEvent: (e: ServerEvent) => void): Promise<{ close: () => void, closed: Promise<void> }> {
    const url = this.url('/api/backup/ws', { token: this.token })
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    const ws = new WebSocket(url)
    const closed = new Promise<void>(resolve => ws.once('close', () => resolve()))
    ws.on('message', (data) => {
      try { onEvent(JSON.parse(String(data)) as ServerEvent) } catch {}
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', err => reject(new PgkeepError('INTERNAL', `cannot open the event socket at ${this.base.origin}: ${err.message}`)))
      ws.once('unexpected-response', (_req, res) => reject(new PgkeepError(res.statusCode === 401 ? 'UNAUTHORIZED' : 'INTERNAL', `the event socket was refused with HTTP ${res.statusCode}`)))
    })
    return { close: () => ws.close(), closed }
  }
}
