import { request as httpRequest, type IncomingMessage } from 'node:http'
import { readdirSync, readlinkSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import type { Backup } from '../../schemas/backup.ts'
import { build } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'

// Clients that stop reading, over a real port: ~20 MB of table data, more than loopback's socket buffers
// hold, so a download whose client reads nothing leaves the server mid-write
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'stalled_clients', { rows: 60_000, padding: 300 })

const base = testConfig(cluster, 'stalled_clients')
t.teardown(base.cleanup)
const IDLE_MS = 300
const config = { ...base, http: { ...base.http, downloadIdleTimeoutMs: IDLE_MS, wsHeartbeatMs: IDLE_MS } }
const { app, service, token } = await build(t, config, { service: 'app' })
await app.listen({ port: 0, host: '127.0.0.1' })
const origin = `127.0.0.1:${(app.server.address() as AddressInfo).port}`

async function completed (body: Record<string, unknown>): Promise<Backup> {
  const res = await fetch(`http://${origin}/api/backup/create`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.operator}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const done = await service.waitFor((await res.json() as { backup: Backup }).backup.id)
  if (done.status !== 'completed') throw new Error(JSON.stringify(done.error))
  return done
}

/** Files of this backup that this process holds open, from /proc: what a stalled download pins. */
function openFilesOf (b: Backup): string[] {
  return readdirSync('/proc/self/fd').flatMap(fd => {
    try { return [readlinkSync(`/proc/self/fd/${fd}`)] } catch { return [] }
  }).filter(p => p.startsWith(`${config.backupDir}/${b.name}`))
}

/** A download that takes the headers and then reads nothing; `cut` resolves with the bytes it got once it ends. */
async function stalledDownload (id: string): Promise<{ response: IncomingMessage, size: number, cut: Promise<number> }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`http://${origin}/api/backup/download/${id}`, { headers: { authorization: `Bearer ${token.operator}` } }, resolve)
    req.once('error', reject)
    req.end()
  })
  response.pause()
  let received = 0
  response.on('data', (d: Buffer) => { received += d.length })
  const socket = response.socket as Socket
  // the server's cut shows once the client reads again: take what the kernel still holds, then the end
  const cut = new Promise<number>(resolve => {
    for (const event of ['end', 'close', 'error']) socket.once(event, () => resolve(received))
  })
  return { response, size: Number(response.headers['content-length'] ?? Infinity), cut }
}

for (const format of ['plain', 'directory'] as const) {
  t.test(`a ${format} download whose client stops reading is cut after the idle timeout and its files are closed`, async t => {
    const b = await completed({ format, compression: 'none' })
    const { response, size, cut } = await stalledDownload(b.id)
    t.equal(response.statusCode, 200)
    await waitUntil(() => openFilesOf(b).length > 0, 10_000, 'the server to open the backup')
    // the client never reads: the socket goes idle once the buffers are full, and the timeout cuts it
    await waitUntil(() => openFilesOf(b).length === 0, 30_000, 'the server to close the backup files')
    t.pass('no file of the backup is held open any more')
    response.resume()
    const received = await cut
    t.ok(received < size, `the download was cut short (${received} of ${size} bytes)`)
  })
}

t.test('a viewer that stops answering pings is dropped', async t => {
  // autoPong off: the peer is there but answers nothing, like a frozen tab or a dead network path
  const ws = new WebSocket(`ws://${origin}/api/backup/ws`, { headers: { authorization: `Bearer ${token.viewer}` }, autoPong: false })
  t.teardown(() => ws.terminate())
  await new Promise(resolve => ws.once('message', resolve))
  const pinged = new Promise(resolve => ws.once('ping', resolve))
  // a deadline, not a race: the client never answers, so only the heartbeat (300 ms here, 30 s by default) ends it
  const code = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the silent viewer was not dropped within 20 s')), 20_000)
    ws.once('close', (c: number) => { clearTimeout(deadline); resolve(c) })
  })
  await pinged
  t.equal(code, 1006, 'terminated, not closed politely')
})
