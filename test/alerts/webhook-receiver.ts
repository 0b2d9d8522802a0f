import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedHook {
  at: number
  /** the JSON body; the raw text when it is not JSON (ntfy) */
  body: Record<string, any>
  raw: string
  /** path and query as requested (Telegram's /bot<token>/sendMessage) */
  path: string
  headers: IncomingMessage['headers']
}

/**
 * A local webhook endpoint (every HTTP channel's stand-in): answers with the queued statuses first (e.g. [500]),
 * then 200 with `answer` as its body.
 */
export async function startReceiver (statuses: number[] = [], answer = 'ok', opts: { silent?: boolean } = {}): Promise<{
  url: string
  received: ReceivedHook[]
  next: () => Promise<ReceivedHook>
  stop: () => Promise<void>
  server: Server
}> {
  const received: ReceivedHook[] = []
  const waiters: ((h: ReceivedHook) => void)[] = []
  const queue = [...statuses]
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      let body: Record<string, any>
      try { body = JSON.parse(raw) } catch { body = {} }
      const hook = { at: Date.now(), body, raw, path: req.url ?? '', headers: req.headers }
      received.push(hook)
      // silent: a service that takes the request and never answers
      if (!opts.silent) {
        res.statusCode = queue.shift() ?? 200
        res.end(answer)
      }
      waiters.shift()?.(hook)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  let seen = 0
  return {
    url: `http://127.0.0.1:${port}/hooks/T000/SECRETPART`,
    received,
    server,
    next: async () => {
      if (seen < received.length) return received[seen++]
      return await new Promise<ReceivedHook>(resolve => waiters.push(h => { seen++; resolve(h) }))
    },
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}
