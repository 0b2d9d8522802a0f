import t from 'tap'
import type WebSocket from 'ws'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { build, tokenFor } from '../../helpers/app.ts'
import { Inbox } from '../live-helpers.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'ws_app', { rows: 500 })

const base = testConfig(cluster, 'ws_app')
t.teardown(base.cleanup)
// open sockets re-check their credentials every 100 ms here (5 s by default)
const config = { ...base, http: { ...base.http, wsRecheckMs: 100 } }
const { app } = await build(t, config, { service: 'app' })
const viewer = await tokenFor(app, 'viewer')

async function connect (path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket, inbox: Inbox }> {
  let inbox!: Inbox
  const ws = await app.injectWS(path, { headers }, { onInit: (s: WebSocket) => { inbox = new Inbox(s) } })
  t.teardown(() => ws.terminate())
  return { ws, inbox }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

t.test('without a token the upgrade is refused with 401', async t => {
  await t.rejects(app.injectWS('/api/backup/ws'), /Unexpected server response: 401/)
  await t.rejects(app.injectWS('/api/backup/ws', { headers: bearer('not.a.jwt') }), /401/)
})

t.test('a token in the URL opens nothing: it would land in proxy and access logs', async t => {
  await t.rejects(app.injectWS(`/api/backup/ws?token=${viewer}`), /401/)
})

t.test('a viewer token as Bearer or the session cookie opens the socket and a snapshot comes first', async t => {
  const byHeader = await connect('/api/backup/ws', bearer(viewer))
  const first = await byHeader.inbox.next(() => true)
  t.equal(first.type, 'snapshot')
  t.same(first.jobs, [])
  const byCookie = await connect('/api/backup/ws', { cookie: `pgkeep_session=${viewer}` })
  t.equal((await byCookie.inbox.next(() => true)).type, 'snapshot')
})

t.test('a revoked token is refused with 401', async t => {
  const token = await tokenFor(app, 'viewer', 'soon-revoked')
  const { ws } = await connect('/api/backup/ws', bearer(token))
  ws.terminate()
  await app.tokens.revoke('soon-revoked')
  await t.rejects(app.injectWS('/api/backup/ws', { headers: bearer(token) }), /401/)
})

t.test('the snapshot lists active jobs and a viewer then sees created, status and deleted, all valid events', async t => {
  const operator = await tokenFor(app, 'operator')
  const before = await connect('/api/backup/ws', bearer(viewer))
  const res = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { authorization: `Bearer ${operator}` }, payload: { compression: 'none' } })
  t.equal(res.statusCode, 202)
  const id = res.json().backup.id
  // a viewer joining mid-job finds it in its snapshot, unless the small dump already ended
  const late = await connect('/api/backup/ws', bearer(viewer))
  const snap = await late.inbox.next(m => m.type === 'snapshot')
  const done = await before.inbox.next(m => m.type === 'status' && m.backupId === id && m.status === 'completed')
  t.ok(snap.jobs.length === 0 || snap.jobs[0].backup.id === id)
  t.ok(before.inbox.messages.some(m => m.type === 'created' && m.backupId === id), 'created event')
  t.ok(before.inbox.messages.some(m => m.type === 'status' && m.status === 'running'), 'running status')
  t.equal(done.backup.id, id)
  t.same(before.inbox.invalid, [], 'every message matched ServerEvent')

  const del = await app.inject({ method: 'DELETE', url: `/api/backup/${id}`, headers: { authorization: `Bearer ${await tokenFor(app, 'admin')}` } })
  t.equal(del.statusCode, 200)
  t.same(await before.inbox.next(m => m.type === 'deleted'), { type: 'deleted', backupId: id })
})

/** The close code the server sends. Holds the event loop meanwhile: the re-check timers are unref'd (they must not keep a server up) and injectWS listens on nothing. */
async function closeCode (ws: WebSocket): Promise<number> {
  const keepAlive = setInterval(() => {}, 1000)
  try {
    return await new Promise(resolve => ws.once('close', (code: number) => resolve(code)))
  } finally {
    clearInterval(keepAlive)
  }
}

t.test('an open socket is closed (1008) once its token is revoked', async t => {
  const token = await tokenFor(app, 'viewer', 'revoked-while-open')
  const { ws, inbox } = await connect('/api/backup/ws', bearer(token))
  await inbox.next(m => m.type === 'snapshot')
  const closed = closeCode(ws)
  await app.tokens.revoke('revoked-while-open')
  t.equal(await closed, 1008)
})

async function loginCookie (username: string, role: 'viewer' | 'admin'): Promise<string> {
  await app.users.add(username, role, `${username} password 1`)
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password: `${username} password 1` } })
  return `pgkeep_session=${res.cookies.find(c => c.name === 'pgkeep_session')!.value}`
}

t.test('logging out closes the sockets opened with that session', async t => {
  const cookie = await loginCookie('ws-leaver', 'viewer')
  const { ws, inbox } = await connect('/api/backup/ws', { cookie })
  await inbox.next(m => m.type === 'snapshot')
  const closed = closeCode(ws)
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie } })).statusCode, 200)
  t.equal(await closed, 1008)
})

t.test('removing a user closes their open sockets', async t => {
  const cookie = await loginCookie('ws-removed', 'admin')
  const { ws, inbox } = await connect('/api/backup/ws', { cookie })
  await inbox.next(m => m.type === 'snapshot')
  const closed = closeCode(ws)
  await app.users.remove('ws-removed')
  t.equal(await closed, 1008)
})
