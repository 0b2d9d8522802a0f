import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { build, tokenFor } from '../helpers/app.ts'
import { Inbox } from './live-helpers.ts'

// One suite over a real listening port and the `ws` client: what a browser or script actually sees.
const cluster = await testCluster()
t.teardown(cluster.stop)
// ~60 MB of table data: the dump lasts a few seconds
await createSampleDatabase(cluster, 'socket_big', { rows: 150_000, padding: 350 })
await cluster.createDatabase('socket_tiny')

const config = testConfig(cluster, 'socket_big')
t.teardown(config.cleanup)
const { app } = await build(t, config, { service: 'app' })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`
const viewer = await tokenFor(app, 'viewer')
const operator = await tokenFor(app, 'operator')

async function api (method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`http://${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${operator}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, json: await res.json() }
}

async function viewerSocket (): Promise<{ ws: WebSocket, inbox: Inbox }> {
  const ws = new WebSocket(`ws://${base}/api/backup/ws`, { headers: { authorization: `Bearer ${viewer}` } })
  const inbox = new Inbox(ws)
  t.teardown(() => ws.terminate())
  await inbox.next(m => m.type === 'snapshot')
  return { ws, inbox }
}

t.test('a backup created over the API is watched to completed: percent never goes back, final bytes = rawBytes', async t => {
  const { inbox } = await viewerSocket()
  const created = await api('POST', '/api/backup/create', { compression: 'none' })
  t.equal(created.status, 202)
  const id = created.json.backup.id
  const done = await inbox.next(m => m.type === 'status' && m.backupId === id && ['completed', 'failed', 'cancelled'].includes(m.status), 60_000)
  t.equal(done.status, 'completed')
  const progress = inbox.messages.filter(m => m.type === 'progress' && m.backupId === id)
  t.ok(progress.length >= 3, `several progress events (${progress.length})`)
  for (let i = 1; i < progress.length; i++) {
    if ((progress[i].percent ?? 0) < (progress[i - 1].percent ?? 0) || progress[i].bytes < progress[i - 1].bytes) {
      t.fail(`progress went backwards at event ${i}`)
    }
  }
  t.ok(progress.every(p => p.percent === undefined || (p.percent >= 0 && p.percent <= 100)), 'percent within 0..100')
  t.equal(progress.at(-1).bytes, done.backup.rawBytes, 'the last progress event counts every byte pg_dump wrote')
  // counted against the job's own clock: arrival gaps on a loaded machine bunch up and say nothing
  const seconds = (Date.parse(done.backup.finishedAt) - Date.parse(done.backup.startedAt)) / 1000
  t.ok(progress.length <= seconds * 5 + 3, `no more than ~5 progress events per second (${progress.length} in ${seconds} s)`)
  const order = inbox.messages.filter(m => m.backupId === id).map(m => m.type === 'status' ? m.status : m.type)
  t.equal(order[0], 'created')
  t.ok(order.indexOf('running') < order.indexOf('progress'), 'running before the first progress')
  t.equal(order.lastIndexOf('progress') < order.indexOf('completed'), true, 'no progress after completed')
  t.same(inbox.invalid, [], 'every message validated against ServerEvent')
})

t.test('cancelling a long dump over the API is seen as cancelled on the socket', async t => {
  const { inbox } = await viewerSocket()
  const created = await api('POST', '/api/backup/create', { format: 'plain', compression: 'gzip', level: 9 })
  const id = created.json.backup.id
  await inbox.next(m => m.type === 'progress' && m.backupId === id && m.bytes > 0, 30_000)
  const cancel = await api('POST', `/api/backup/${id}/cancel`)
  t.equal(cancel.status, 200)
  const final = await inbox.next(m => m.type === 'status' && m.backupId === id && ['completed', 'failed', 'cancelled'].includes(m.status), 30_000)
  t.equal(final.status, 'cancelled')
  t.equal(final.backup.error?.code, 'CANCELLED')
  t.same(inbox.invalid, [])
})

t.test('a viewer that never reads is dropped, and neither memory nor the dump waits for it', async t => {
  // real but heavy events: this backup's record carries ~60 kB of exclude patterns and every pin
  // change sends the whole record, so a stalled viewer soon owes megabytes (loopback kernel buffers
  // alone absorb ~4 MB before the server's own buffer starts to grow)
  const excludeTables = Array.from({ length: 900 }, (_, i) => `archive_${String(i).padStart(4, '0')}_${'x'.repeat(50)}`)
  const heavy = await api('POST', '/api/backup/create', { compression: 'none', excludeTables, schemaOnly: true })
  t.equal(heavy.status, 202)
  const heavyId = heavy.json.backup.id

  const healthy = await viewerSocket()
  await healthy.inbox.next(m => m.type === 'status' && m.backupId === heavyId && m.status === 'completed', 60_000)
  const stalled = await viewerSocket()
  // stop reading at the TCP level, as a frozen browser tab or a dead network path would
  const raw = (stalled.ws as unknown as { _socket: import('node:net').Socket })._socket
  raw.pause()

  const big = await api('POST', '/api/backup/create', { compression: 'none' })
  t.equal(big.status, 202)
  const bigId = big.json.backup.id
  await healthy.inbox.next(m => m.type === 'progress' && m.backupId === bigId, 30_000)
  // ~6.6 MB to a viewer that reads nothing: more than the kernel buffers plus the server's bound
  let failedPins = 0
  for (let pins = 0; pins < 110; pins++) {
    const r = await api('POST', `/api/backup/${heavyId}/pin`, { pinned: pins % 2 === 0 })
    if (r.status !== 200) failedPins++
  }
  t.equal(failedPins, 0)
  const bigDone = await healthy.inbox.next(m => m.type === 'status' && m.backupId === bigId && m.status === 'completed', 60_000)
  const bigProgress = healthy.inbox.messages.filter(m => m.type === 'progress' && m.backupId === bigId)
  const worstGap = Math.max(...bigProgress.slice(1).map((p, i) => p.receivedAt - bigProgress[i].receivedAt))
  t.ok(worstGap < 3000, `the healthy viewer kept getting progress while the other stalled (worst gap ${worstGap} ms)`)
  t.equal(bigDone.backup.status, 'completed')

  const closed = new Promise<number>(resolve => {
    stalled.ws.once('close', code => resolve(code))
    setTimeout(() => resolve(-1), 20_000).unref()
  })
  raw.resume()
  t.equal(await closed, 1006, 'the stalled viewer was cut off, not closed politely after getting everything')
  const pinEvents = (inbox: Inbox): number => inbox.messages.filter(m => m.type === 'status' && m.backupId === heavyId && m.status === 'completed').length
  t.ok(pinEvents(stalled.inbox) < pinEvents(healthy.inbox), `the stalled viewer did not get the whole stream buffered for it (${pinEvents(stalled.inbox)} of ${pinEvents(healthy.inbox)})`)
  t.equal(healthy.inbox.closed, false, 'the healthy viewer is still connected')
  t.same(healthy.inbox.invalid, [])
})
