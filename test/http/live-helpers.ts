import type WebSocket from 'ws'
import { Compile } from 'typebox/compile'
import { ServerEvent } from '../../schemas/events.ts'

export const checkServerEvent = Compile(ServerEvent)

/** Collects every message of a socket from the start and lets a test wait for the one it wants. */
export class Inbox {
  readonly messages: any[] = []
  readonly invalid: unknown[] = []
  #waiters: { pred: (m: any) => boolean, resolve: (m: any) => void }[] = []
  closed = false

  constructor (ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      if (!checkServerEvent.Check(msg)) this.invalid.push(msg)
      // non-enumerable: comparisons of the message itself stay exact
      Object.defineProperty(msg, 'receivedAt', { value: Date.now(), enumerable: false })
      this.messages.push(msg)
      this.#waiters = this.#waiters.filter(w => {
        if (!w.pred(msg)) return true
        w.resolve(msg)
        return false
      })
    })
    ws.on('close', () => { this.closed = true })
  }

  async next (pred: (m: any) => boolean, timeoutMs = 30_000): Promise<any> {
    const hit = this.messages.find(pred)
    if (hit) return hit
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a WebSocket message')), timeoutMs)
      this.#waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    })
  }
}
