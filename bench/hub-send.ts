// Issue 12 target 5, the hub's share on its own: what one event costs the server per viewer, with N real
// WebSocket viewers on loopback, when ws frames each message for each viewer (send) and when the hub frames it
// once for all (write, live-hub.ts textFrame). Timed: the broadcast of a burst of events plus the uncorked writes
// at the end of that turn of the loop (the viewers read later). BENCH_VIEWERS (default 1000), BENCH_EVENTS (200).
import { EventEmitter } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { LiveHub, type LiveClient, type LiveSource } from '../server/http/live-hub.ts'
import { line } from './measure.ts'

const viewers = Number(process.env.BENCH_VIEWERS ?? 1000)
const events = Number(process.env.BENCH_EVENTS ?? 200)
const rounds = 5

function adapter (socket: WebSocket, frames: boolean): LiveClient {
  const raw = (socket as unknown as { _socket: Duplex })._socket
  return {
    get bufferedAmount () { return socket.bufferedAmount },
    get readyState () { return socket.readyState },
    send: (data, options) => { socket.send(data, options) },
    terminate: () => { socket.terminate() },
    cork: () => { raw.cork() },
    uncork: () => { raw.uncork() },
    ...(frames ? { write: (frame: Buffer) => { raw.write(frame) } } : {}),
  }
}

const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
await new Promise(resolve => server.once('listening', resolve))
const accepted: WebSocket[] = []
server.on('connection', s => accepted.push(s))
const port = (server.address() as AddressInfo).port
const clients: WebSocket[] = []
for (let i = 0; i < viewers; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, viewers - i) }, async () => {
    const c = new WebSocket(`ws://127.0.0.1:${port}`)
    clients.push(c)
    c.on('message', () => {})
    await new Promise(resolve => c.once('open', resolve))
  }))
}
while (accepted.length < viewers) await new Promise(resolve => setImmediate(resolve))

const backupId = '01936f6e-0000-7000-8000-000000000001'
async function measure (frames: boolean): Promise<number> {
  // a source of its own: the other mode's hub stays attached to its own (closing it would end the viewers)
  const source = Object.assign(new EventEmitter(), { active: () => [], activeRestores: () => [] }) as unknown as LiveSource & EventEmitter
  const hub = new LiveHub(source, { maxBufferedBytes: 1 << 30, behindBytes: 1 << 30 })
  for (const s of accepted) hub.add(adapter(s, frames), 'viewer')
  await new Promise(resolve => setTimeout(resolve, 200))
  let best = Infinity
  for (let r = 0; r < rounds; r++) {
    const cpu = process.cpuUsage()
    for (let i = 0; i < events; i++) source.emit('log', { backupId, line: `pg_dump: dumping contents of table "public.payload_${i}"`, at: new Date().toISOString() })
    await new Promise(resolve => setImmediate(resolve)) // after the hub's uncork of this turn
    const used = process.cpuUsage(cpu)
    best = Math.min(best, (used.user + used.system) / 1000)
    await new Promise(resolve => setTimeout(resolve, 300)) // the viewers read it all
  }
  return best
}

const framedByWs = await measure(false)
const framedOnce = await measure(true)
const per = (ms: number): string => `${(ms * 1000 / events / viewers).toFixed(2)} us per event and viewer (${ms.toFixed(0)} ms CPU for ${events} events)`
console.log(`\nhub fan-out, ${viewers} viewers over loopback, best of ${rounds}`)
line('ws frames each message for each viewer (send)', per(framedByWs))
line('the hub frames each event once (write)', per(framedOnce))
line('ratio once / per viewer', (framedOnce / framedByWs).toFixed(3))
for (const c of clients) c.terminate()
server.close()
