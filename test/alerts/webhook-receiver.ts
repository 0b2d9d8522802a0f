import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedHook {
  at: number
  body: Record<string, any>
  headers: IncomingMessage['headers']
}

/** A local webhook endpoint: answers with the queued statuses first (e.g. [500]), then 200. */
export async function startReceiver (statuses: number[] = []): Promise<{
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
      const hook = { at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')), headers: req.headers }
      received.push(hook)
      res.statusCode = queue.shift() ?? 200
      res.end('ok')
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
