import WebSocket from 'ws'
import type { Backup, BackupStatus } from '../../../schemas/backup.ts'
import type { ServerEvent } from '../../../schemas/events.ts'

const TERMINAL: BackupStatus[] = ['completed', 'failed', 'cancelled']

/** A script's view of the API: bearer token from /api/auth/login. */
export class ApiClient {
  private constructor (readonly url: string, private readonly token: string) {}

  static async login (url: string, user: { username: string, password: string }): Promise<ApiClient> {
    const res = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) })
    if (!res.ok) throw new Error(`login failed: ${res.status} ${await res.text()}`)
    const { token } = await res.json() as { token: string }
    return new ApiClient(url, token)
  }

  async call (method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, json: text ? JSON.parse(text) : undefined }
  }

  async create (body: Record<string, unknown> = {}): Promise<Backup> {
    const r = await this.call('POST', '/api/backup/create', body)
    if (r.status !== 202) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.json)}`)
    return r.json.backup as Backup
  }

  async total (): Promise<number> {
    return (await this.call('GET', '/api/backup/list?pageSize=1')).json.total as number
  }

  /** Resolves with the terminal status, told by the WebSocket (checked once after connecting, to close the race). */
  async waitTerminal (id: string, timeoutMs = 60_000): Promise<BackupStatus> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/api/backup/ws`, { headers: { authorization: `Bearer ${this.token}` } })
    try {
      return await new Promise<BackupStatus>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`backup ${id} not finished after ${timeoutMs} ms`)), timeoutMs)
        const finish = (s: BackupStatus): void => { clearTimeout(timer); resolve(s) }
        ws.on('error', reject)
        ws.on('message', data => {
          const e = JSON.parse(String(data)) as ServerEvent
          if (e.type === 'status' && e.backupId === id && TERMINAL.includes(e.status)) finish(e.status)
        })
        ws.on('open', () => {
          this.call('GET', `/api/backup/status/${id}`).then(r => {
            if (TERMINAL.includes(r.json.backup.status)) finish(r.json.backup.status)
          }, reject)
        })
      })
    } finally {
      ws.close()
    }
  }
}
