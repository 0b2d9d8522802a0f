import t from 'tap'
import type WebSocket from 'ws'
import { loadConfig } from '../../server/config.ts'
import { originPolicy } from '../../server/http/origin-policy.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { ADMIN_PASSWORD, setupApp } from './helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'origin_guard', { rows: 100 })
const { http } = loadConfig({ PGKEEP_ALLOWED_ORIGINS: 'https://ops.example/' })
const { app, as, service } = await setupApp(t, cluster, 'origin_guard', {}, { http })

const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password: ADMIN_PASSWORD } })
if (login.statusCode !== 200) throw new Error(login.body)
const cookie = `pgkeep_session=${login.cookies.find(c => c.name === 'pgkeep_session')!.value}`
// inject's requests arrive as Host localhost:80, so the server's own origin is http://localhost
const OWN = 'http://localhost'
const createdCount = (): number => service.list({}).total

t.test('a cookie-authenticated change from a foreign origin is refused before it runs', async t => {
  const before = createdCount()
  for (const origin of ['https://evil.example', 'http://localhost:8081', 'null']) {
    const res = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { cookie, origin, 'content-type': 'application/json' }, payload: '{}' })
    t.equal(res.statusCode, 403, origin)
    t.equal(res.json().code, 'FORBIDDEN')
    t.match(res.json().message, /cross-origin request refused/)
  }
  const viaReferer = await app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie, referer: 'https://evil.example/page' } })
  t.equal(viaReferer.statusCode, 403, 'without Origin, the Referer says where it came from')
  t.equal(createdCount(), before, 'no backup was created')
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode, 200, 'the session was not logged out')
})

t.test('text/plain bodies are refused on every route (415), so a no-preflight cross-site POST cannot reach one', async t => {
  const before = createdCount()
  for (const url of ['/api/backup/create', '/api/auth/logout']) {
    const res = await app.inject({ method: 'POST', url, headers: { cookie, origin: OWN, 'content-type': 'text/plain' }, payload: '{}' })
    t.equal(res.statusCode, 415, url)
    t.equal(res.json().code, 'INVALID_INPUT')
  }
  t.equal(createdCount(), before)
})

t.test('changes from the server\'s own origin, from a client that names none, and with a bearer token go through', async t => {
  const own = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { cookie, origin: OWN }, payload: { compression: 'none' } })
  t.equal(own.statusCode, 202, own.body)
  const script = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { cookie }, payload: { compression: 'none' } })
  t.equal(script.statusCode, 202, 'no Origin: not a browser')
  const bearer = await as('operator', { method: 'POST', url: '/api/backup/create', headers: { origin: 'https://evil.example' }, payload: { compression: 'none' } })
  t.equal(bearer.statusCode, 202, 'a bearer token is not ambient: a foreign page cannot have it sent')
  for (const r of [own, script, bearer]) await service.waitFor(r.json().backup.id)
})

t.test('an origin in PGKEEP_ALLOWED_ORIGINS may make changes', async t => {
  const res = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { cookie, origin: 'https://ops.example' }, payload: { compression: 'none' } })
  t.equal(res.statusCode, 202, res.body)
  await service.waitFor(res.json().backup.id)
  const refused = await app.inject({ method: 'POST', url: '/api/backup/create', headers: { cookie, origin: 'https://ops.example.evil' }, payload: { compression: 'none' } })
  t.equal(refused.statusCode, 403)
})

t.test('the WebSocket upgrade with the cookie checks Origin; with a bearer header it does not', async t => {
  await t.rejects(app.injectWS('/api/backup/ws', { headers: { cookie, origin: 'https://evil.example' } }), /403/)
  // injectWS sends no Host of its own; a browser always does
  const own = await app.injectWS('/api/backup/ws', { headers: { cookie, origin: OWN, host: 'localhost' } })
  own.terminate()
  const byToken = await app.injectWS('/api/backup/ws', { headers: { authorization: `Bearer ${login.json().token}`, origin: 'https://evil.example' } }) as WebSocket
  byToken.terminate()
  t.pass('own origin and token sockets open')
})

t.test('a Host the server does not answer to is refused (DNS rebinding); health stays reachable for probes', async t => {
  const rebound = await app.inject({ method: 'GET', url: '/api/backup/list', headers: { host: 'evil.example:8080', cookie } })
  t.equal(rebound.statusCode, 403)
  t.match(rebound.json().message, /does not answer to host "evil.example:8080"/)
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { host: 'evil.example' } })).statusCode, 403)
  for (const host of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST']) {
    t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { host, cookie } })).statusCode, 200, host)
  }
  t.equal((await app.inject({ method: 'GET', url: '/api/health', headers: { host: '10.0.0.7:8080' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/api/health/ready', headers: { host: '10.0.0.7:8080' } })).statusCode, 200)
})

t.test('which Host names are accepted follows where the server listens and PGKEEP_ALLOWED_HOSTS', async t => {
  const none = { allowedHosts: [], allowedOrigins: [] }
  const names = (bind: string, allowedHosts: string[] = []): string[] => [...originPolicy(bind, { ...none, allowedHosts }).hosts ?? []].sort()
  t.same(names('127.0.0.1'), ['127.0.0.1', '[::1]', 'localhost'])
  t.same(names('127.0.0.1', ['pgkeep.lan']), ['127.0.0.1', '[::1]', 'localhost', 'pgkeep.lan'])
  t.equal(originPolicy('0.0.0.0', none).hosts, undefined, 'beyond loopback with no list: any Host (with a warning at start)')
  t.same(names('0.0.0.0', ['backup.example']), ['127.0.0.1', '[::1]', 'backup.example', 'localhost'])
  t.ok(originPolicy('10.0.0.7', { ...none, allowedHosts: ['backup.example'] }).hosts!.has('10.0.0.7'), 'a specific bind address is one of its names')
})
