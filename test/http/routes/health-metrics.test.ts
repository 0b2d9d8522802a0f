import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../../helpers/sample-db.ts'
import { setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'health_app', { rows: 200 })
const { app, config, as } = await setupApp(t, cluster, 'health_app')

t.test('liveness answers without auth', async t => {
  const res = await app.inject({ method: 'GET', url: '/api/health' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'ok')
})

t.test('readiness is 200 when the target, pg_dump, the backups dir and free space are fine; the checks need a login', async t => {
  const res = await as('viewer', { method: 'GET', url: '/api/health/ready' })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().ready, true)
  t.same(res.json().reasons, [])
  t.same(res.json().checks.map((c: { name: string }) => c.name).sort(), ['backupDir:freeSpace', 'backupDir:writable', 'pg_dump', 'target:default'])
  const anonymous = await app.inject({ method: 'GET', url: '/api/health/ready' })
  t.equal(anonymous.statusCode, 200)
  t.same(anonymous.json(), { ready: true }, 'without a login: ready or not, nothing more')
  const bad = await app.inject({ method: 'GET', url: '/api/health/ready', headers: { authorization: 'Bearer not.a.jwt' } })
  t.equal(bad.statusCode, 401, 'bad credentials are refused, not quietly treated as none')
})

t.test('readiness is 503 naming the reason when the target is unreachable or space is short; anonymous callers see only 503', async t => {
  const savedTargets = config.targets
  const savedMin = config.minFreeBytes
  t.teardown(() => { config.targets = savedTargets; config.minFreeBytes = savedMin })
  config.targets = { ...savedTargets, default: { ...savedTargets.default, host: '127.0.0.1', port: 1 } }
  config.minFreeBytes = Number.MAX_SAFE_INTEGER
  const res = await as('viewer', { method: 'GET', url: '/api/health/ready' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().ready, false)
  const reasons: string[] = res.json().reasons
  t.ok(reasons.some(r => r.startsWith('target:default:')), reasons.join('; '))
  t.ok(reasons.some(r => r.startsWith('backupDir:freeSpace:')), reasons.join('; '))
  t.notMatch(res.body, cluster.password)
  // the logged-in probe just ran: an anonymous caller gets its verdict, and not one word of why
  const anonymous = await app.inject({ method: 'GET', url: '/api/health/ready' })
  t.equal(anonymous.statusCode, 503)
  t.same(anonymous.json(), { ready: false })
})

t.test('anonymous readiness calls do not open a connection to the targets each: one probe serves them for a few seconds', async t => {
  // a stand-in target that counts the connections made to it (and refuses to be PostgreSQL)
  let connections = 0
  const counter = createServer(socket => { connections++; socket.destroy() })
  await new Promise<void>(resolve => counter.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { counter.close() })
  const savedTargets = config.targets
  t.teardown(() => { config.targets = savedTargets })
  config.targets = { ...savedTargets, default: { ...savedTargets.default, host: '127.0.0.1', port: (counter.address() as AddressInfo).port } }
  const first = await as('viewer', { method: 'GET', url: '/api/health/ready' })
  t.equal(first.statusCode, 503)
  const perProbe = connections
  t.ok(perProbe > 0, 'a probe reaches the target')
  const replies = await Promise.all(Array.from({ length: 20 }, async () => await app.inject({ method: 'GET', url: '/api/health/ready' })))
  t.same(replies.map(r => r.statusCode), Array(20).fill(503))
  t.equal(connections, perProbe, '20 anonymous calls, no new connection')
  await as('viewer', { method: 'GET', url: '/api/health/ready' })
  t.equal(connections, 2 * perProbe, 'a logged-in caller gets a fresh probe')
})

const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? -?(?:[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?\d+)?$/

t.test('/metrics is Prometheus text: every line a comment or a valid sample, with the pgkeep series', async t => {
  const created = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { compression: 'none' } })
  const done = await app.backupService.waitFor(created.json().backup.id)
  t.equal(done.status, 'completed')
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  for (const line of res.body.split('\n').filter(Boolean)) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    t.match(line, SAMPLE)
  }
  for (const name of ['pgkeep_backups', 'pgkeep_last_success_timestamp_seconds', 'pgkeep_last_success_size_bytes', 'pgkeep_backup_duration_seconds',
    'pgkeep_bytes_written_total', 'pgkeep_storage_used_bytes', 'pgkeep_storage_free_bytes', 'pgkeep_active_jobs']) {
    t.match(res.body, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  t.match(res.body, /^pgkeep_backups\{status="completed"\} 1$/m)
  t.match(res.body, new RegExp(`^pgkeep_last_success_size_bytes\\{target="default"\\} ${done.sizeBytes}$`, 'm'))
  t.match(res.body, /^pgkeep_backup_duration_seconds_count\{target="default"\} 1$/m)
  t.match(res.body, new RegExp(`^pgkeep_bytes_written_total ${done.sizeBytes}$`, 'm'))
})

t.test('a lone pgkeep (no shared catalog) shows no instance: none in the ready reply, no catalog check, no instance series', async t => {
  const ready = await as('viewer', { method: 'GET', url: '/api/health/ready' })
  t.equal(ready.json().instance, undefined)
  t.notOk(ready.json().checks.some((c: { name: string }) => c.name === 'catalog'))
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  for (const name of ['pgkeep_catalog_up', 'pgkeep_instance_info', 'pgkeep_instance_leases', 'pgkeep_queue_jobs', 'pgkeep_live_instances']) {
    t.notMatch(metrics, new RegExp(`^# TYPE ${name} `, 'm'), `no ${name}`)
  }
})

t.test('OpenAPI is generated from the route schemas and the docs UI is served', async t => {
  const spec = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(spec.statusCode, 200)
  const paths = Object.keys(spec.json().paths)
  for (const p of ['/api/auth/login', '/api/backup/create', '/api/backup/list', '/api/backup/status/{id}', '/api/backup/download/{id}', '/api/backup/{id}/cancel', '/api/backup/cleanup', '/api/audit', '/api/health/ready']) {
    t.ok(paths.includes(p), p)
  }
  t.ok(spec.json().paths['/api/backup/create'].post.requestBody, 'body schema present')
  const docs = await app.inject({ method: 'GET', url: '/docs' })
  t.ok(docs.statusCode < 400)
})

t.test('an unknown API route is a coded 404', async t => {
  const res = await app.inject({ method: 'GET', url: '/api/nothing/here' })
  t.equal(res.statusCode, 404)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(res.json().code, 'NOT_FOUND')
})

t.test('with a built client, / serves it and client routes fall back to index.html; /api stays JSON', async t => {
  const clientDir = mkdtempSync(join(tmpdir(), 'pgkeep-client-'))
  writeFileSync(join(clientDir, 'index.html'), '<!doctype html><title>pgkeep</title>')
  writeFileSync(join(clientDir, 'app.js'), 'console.log(1)')
  const withClient = await setupApp(t, cluster, 'health_app', { clientDir })
  const root = await withClient.app.inject({ method: 'GET', url: '/' })
  t.equal(root.statusCode, 200)
  t.match(root.body, '<title>pgkeep</title>')
  t.match((await withClient.app.inject({ method: 'GET', url: '/app.js' })).body, 'console.log')
  const deep = await withClient.app.inject({ method: 'GET', url: '/dashboard/backup' })
  t.equal(deep.statusCode, 200)
  t.match(deep.headers['content-type'], /text\/html/)
  const api = await withClient.app.inject({ method: 'GET', url: '/api/nope' })
  t.equal(api.statusCode, 404)
  t.equal(api.json().code, 'NOT_FOUND')
  t.equal((await withClient.app.inject({ method: 'POST', url: '/dashboard' })).statusCode, 404)
})
