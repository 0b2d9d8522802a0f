import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Role } from '../../../schemas/auth.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../../helpers/sample-db.ts'
import { waitUntil } from '../../helpers/service.ts'
import { auditLines, setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'backups_app', { rows: 300 })
const { app, config, as, completedBackup } = await setupApp(t, cluster, 'backups_app')
const service = app.backupService
const registryBytes = (): string => readFileSync(join(config.backupDir, 'registry.json'), 'utf8')
const UNKNOWN_ID = '01936f6e-0000-7000-8000-000000000000'

t.test('an operator creates a backup: 202 with the queued record, then list and status show it completed', async t => {
  const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { format: 'custom', compression: 'gzip', name: 'nightly-1.dump' } })
  t.equal(res.statusCode, 202)
  const { backup } = res.json()
  t.match(backup, { status: 'queued', name: 'nightly-1.dump', format: 'custom', createdBy: 'token:suite-operator' })
  await service.waitFor(backup.id)
  const status = await as('viewer', { method: 'GET', url: `/api/backup/status/${backup.id}` })
  t.equal(status.statusCode, 200)
  t.equal(status.json().backup.status, 'completed')
  const list = await as('viewer', { method: 'GET', url: '/api/backup/list?status=completed&sort=createdAt&order=desc&page=1&pageSize=10' })
  t.equal(list.statusCode, 200)
  t.match(list.json(), { total: Number, page: 1, pageSize: 10 })
  t.ok(list.json().items.some((b: { id: string }) => b.id === backup.id))
  const audit = (await auditLines(app)).find(l => l.action === 'backup.create' && l.backupId === backup.id)
  t.match(audit, { user: 'token:suite-operator', role: 'operator', outcome: 'ok', ip: String, time: String })
})

t.test('every route refuses callers without a token (401) and with a too-low role (403), changing nothing', async t => {
  const id = await completedBackup()
  const before = registryBytes()
  const routes: { method: 'GET' | 'POST' | 'DELETE', url: string, min: Role, payload?: object }[] = [
    { method: 'POST', url: '/api/backup/create', min: 'operator', payload: {} },
    { method: 'GET', url: '/api/backup/list', min: 'viewer' },
    { method: 'GET', url: `/api/backup/status/${id}`, min: 'viewer' },
    { method: 'GET', url: `/api/backup/download/${id}`, min: 'operator' },
    { method: 'POST', url: `/api/backup/${id}/cancel`, min: 'operator' },
    { method: 'POST', url: `/api/backup/${id}/validate`, min: 'operator' },
    { method: 'POST', url: `/api/backup/${id}/pin`, min: 'operator', payload: { pinned: true } },
    { method: 'DELETE', url: `/api/backup/${id}`, min: 'admin' },
    { method: 'POST', url: '/api/backup/cleanup', min: 'admin', payload: { policy: { keepLast: 1 } } },
    { method: 'POST', url: `/api/backup/${id}/restore`, min: 'admin', payload: { database: 'nope' } },
    { method: 'GET', url: '/api/audit', min: 'admin' },
  ]
  const order: Role[] = ['viewer', 'operator', 'admin']
  for (const r of routes) {
    const anon = await as(undefined, { method: r.method, url: r.url, payload: r.payload })
    t.equal(anon.statusCode, 401, `${r.method} ${r.url} without auth`)
    t.equal(anon.json().code, 'UNAUTHORIZED')
    for (const role of order.slice(0, order.indexOf(r.min))) {
      const res = await as(role, { method: r.method, url: r.url, payload: r.payload })
      t.equal(res.statusCode, 403, `${r.method} ${r.url} as ${role}`)
      t.equal(res.json().code, 'FORBIDDEN')
    }
  }
  t.equal(registryBytes(), before, 'registry untouched')
  const denied = (await auditLines(app)).filter(l => l.outcome === 'denied' && l.action === 'backup.delete')
  t.ok(denied.length >= 3, 'denied state-changing calls are audited too')
})

t.test('a body the schema refuses gets one plain line naming the field, in the config file\'s words', async t => {
  const cases: [object, string][] = [
    [{ level: 'high' }, 'body.level: must be a whole number'],
    [{ bogus: 1 }, 'body: unknown field "bogus"'],
    [{ jobs: 0 }, 'body.jobs: must be at least 1'],
    [{ format: 'zip' }, 'body.format: must be one of "custom", "plain", "directory", "tar"'],
  ]
  for (const [payload, message] of cases) {
    const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload })
    t.equal(res.statusCode, 400)
    t.equal(res.json().message, message, JSON.stringify(payload))
  }
})

t.test('bad bodies, traversal in names and ids, huge bodies: 4xx with a code, registry unchanged', async t => {
  await completedBackup()
  const before = registryBytes()
  const bad: [object | string, number, RegExp][] = [
    [{ format: 'zip' }, 400, /format/],
    [{ level: 'high' }, 400, /level/],
    [{ level: '5' }, 400, /level/],
    [{ jobs: 0 }, 400, /jobs/],
    [{ bogus: 1 }, 400, /bogus/],
    [{ name: '../../etc/passwd' }, 400, /name/],
    [{ name: '.hidden' }, 400, /name/],
    [{ target: '../other' }, 400, /target/],
    [{ target: 'nosuchtarget' }, 400, /target/],
    [{ schemas: ['ok', 'bad\u0000'] }, 400, /schemas/],
    [{ name: 'x'.repeat(70_000) }, 413, /./],
    ['{"format": ', 400, /./],
  ]
  for (const [payload, status, field] of bad) {
    const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload, headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, status, JSON.stringify(payload).slice(0, 60))
    t.equal(res.json().code, 'INVALID_INPUT')
    t.match(res.json().message, field)
    t.notMatch(res.body, /at .*\.ts:\d+/, 'no stack trace')
  }
  // '..' is resolved away by the URL parser (a 404 for no such route); the others reach the id check
  for (const id of ['..%2F..%2Fetc%2Fpasswd', '..', 'not-a-uuid', '%00', '%2e%2e']) {
    for (const [role, method, url] of [['admin', 'GET', `/api/backup/status/${id}`], ['admin', 'DELETE', `/api/backup/${id}`], ['operator', 'GET', `/api/backup/download/${id}`]] as const) {
      const res = await as(role, { method, url })
      t.ok(res.statusCode === 400 || res.statusCode === 404, `${method} ${url} -> ${res.statusCode}`)
      t.match(res.json().code, /^(INVALID_INPUT|NOT_FOUND)$/)
    }
  }
  t.equal((await as('admin', { method: 'GET', url: '/api/backup/status/..%2F..%2Fetc%2Fpasswd' })).json().code, 'INVALID_INPUT')
  t.equal((await as('viewer', { method: 'GET', url: '/api/backup/list?pageSize=0' })).statusCode, 400)
  t.equal((await as('viewer', { method: 'GET', url: '/api/backup/list?sort=password' })).statusCode, 400)
  t.equal((await as('viewer', { method: 'GET', url: '/api/backup/list?from=yesterday' })).statusCode, 400)
  t.equal((await as('viewer', { method: 'GET', url: '/api/backup/list?evil=1' })).statusCode, 400)
  const missing = await as('viewer', { method: 'GET', url: `/api/backup/status/${UNKNOWN_ID}` })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'NOT_FOUND')
  t.equal((await as('operator', { method: 'POST', url: `/api/backup/${UNKNOWN_ID}/pin`, payload: { pinned: 'yes' } })).statusCode, 400)
  t.equal((await as('admin', { method: 'POST', url: '/api/backup/cleanup', payload: { policy: {} } })).json().code, 'INVALID_INPUT', 'an empty policy is refused')
  t.equal(registryBytes(), before, 'registry untouched')
})

t.test('validate, pin, cleanup dry run and delete each do their one thing and are audited', async t => {
  const id = await completedBackup()
  const v = await as('operator', { method: 'POST', url: `/api/backup/${id}/validate` })
  t.equal(v.statusCode, 200)
  t.equal(v.json().backup.verification.ok, true)
  const pin = await as('operator', { method: 'POST', url: `/api/backup/${id}/pin`, payload: { pinned: true } })
  t.equal(pin.json().backup.pinned, true)
  const dry = await as('admin', { method: 'POST', url: '/api/backup/cleanup', payload: { policy: { keepLast: 1 }, dryRun: true } })
  t.equal(dry.statusCode, 200)
  t.equal(dry.json().dryRun, true)
  t.notOk(dry.json().deleted.some((b: { id: string }) => b.id === id), 'a pinned backup is never up for deletion')
  const countBefore = service.list({}).total
  t.equal(service.list({}).total, countBefore, 'dry run deleted nothing')
  await as('operator', { method: 'POST', url: `/api/backup/${id}/pin`, payload: { pinned: false } })
  const del = await as('admin', { method: 'DELETE', url: `/api/backup/${id}` })
  t.equal(del.statusCode, 200)
  t.equal((await as('viewer', { method: 'GET', url: `/api/backup/status/${id}` })).statusCode, 404)
  const actions = (await auditLines(app)).filter(l => l.backupId === id && l.outcome === 'ok').map(l => l.action)
  for (const a of ['backup.validate', 'backup.pin', 'backup.delete']) t.ok(actions.includes(a), `${a} audited`)
  t.ok((await auditLines(app)).some(l => l.action === 'backup.cleanup' && l.user === 'token:suite-admin'))
})

t.test('cancelling over the API ends the backup cancelled; cancelling a finished one is 409 INVALID_STATE', async t => {
  const created = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { compression: 'zstd', level: 19 } })
  const id = created.json().backup.id
  const res = await as('operator', { method: 'POST', url: `/api/backup/${id}/cancel` })
  t.equal(res.statusCode, 200)
  t.equal(res.json().backup.status, 'cancelled')
  const again = await as('operator', { method: 'POST', url: `/api/backup/${id}/cancel` })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'INVALID_STATE')
})

t.test('a full queue answers 429 QUEUE_FULL and stores nothing', async t => {
  const before = registryBytes()
  const saved = config.maxQueue
  config.maxQueue = 0
  t.teardown(() => { config.maxQueue = saved })
  const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: {} })
  t.equal(res.statusCode, 429)
  t.equal(res.json().code, 'QUEUE_FULL')
  t.equal(registryBytes(), before)
})

t.test('the create rate limit answers 429 RATE_LIMITED past its budget', async t => {
  const limited = await setupApp(t, cluster, 'backups_app', { rateLimits: { global: 1000, create: 2, login: 1000 } })
  const codes: number[] = []
  for (let i = 0; i < 3; i++) codes.push((await limited.as('operator', { method: 'POST', url: '/api/backup/create', payload: { bogus: true } })).statusCode)
  t.same(codes, [400, 400, 429])
})

t.test('an admin restores a completed backup: 202 with a job id, and the job finishes', async t => {
  const id = await completedBackup({ format: 'custom', compression: 'none' })
  const res = await as('admin', { method: 'POST', url: `/api/backup/${id}/restore`, payload: { database: 'restored_http', create: true } })
  t.equal(res.statusCode, 202)
  const restoreId = res.json().restore.id
  let state = (await as('admin', { method: 'GET', url: `/api/restore/${restoreId}` })).json()
  t.equal(state.restoreId, restoreId, 'the server tracks the job')
  await waitUntil(async () => {
    state = (await as('admin', { method: 'GET', url: `/api/restore/${restoreId}` })).json()
    return state.status !== 'running'
  }, 60_000, 'the restore to end')
  t.equal(state.status, 'completed')
  t.match(await cluster.psql('SELECT count(*) FROM public.orders', 'restored_http'), /300/)
  t.equal((await as('admin', { method: 'POST', url: `/api/backup/${id}/restore`, payload: { database: 'x', drop: true } })).statusCode, 400)
})

t.test('a cleanup\'s audit entry names every backup it deleted and why; a dry run says it is one and deletes nothing', async t => {
  const kept = [await completedBackup({ compression: 'none', target: 'default' })]
  kept.unshift(await completedBackup({ compression: 'none' }))
  const before = service.list({ status: 'completed', pageSize: 500 }).items.map(b => b.id).filter(id => !kept.includes(id))
  const dry = await as('admin', { method: 'POST', url: '/api/backup/cleanup', payload: { policy: { keepLast: 2 }, dryRun: true } })
  t.equal(dry.statusCode, 200)
  t.same(dry.json().deletedReasons.map((r: { id: string }) => r.id), dry.json().deleted.map((b: { id: string }) => b.id), 'the reply says why, too')
  const real = await as('admin', { method: 'POST', url: '/api/backup/cleanup', payload: { policy: { keepLast: 2 } } })
  t.equal(real.statusCode, 200)
  const entries = (await auditLines(app)).filter(l => l.action === 'backup.cleanup').slice(-2)
  t.match(entries[0], { dryRun: true, door: 'http', user: 'token:suite-admin', outcome: 'ok' })
  t.notOk(entries[0].deleted, 'a dry run deleted nothing')
  t.match(entries[1], { dryRun: false, door: 'http', outcome: 'ok' })
  const deleted = entries[1].deleted as { id: string, name: string, reason: string }[]
  t.same(deleted.map(d => d.id).sort(), real.json().deleted.map((b: { id: string }) => b.id).sort())
  t.ok(deleted.length > 0 && deleted.every(d => before.includes(d.id) && /^full backup #\d+ of target .* kept by none of keepLast 2$/.test(d.reason)))
  const page = await as('admin', { method: 'GET', url: '/api/audit?pageSize=500' })
  t.ok(page.json().items.some((l: { deleted?: unknown[] }) => (l.deleted?.length ?? 0) === deleted.length), 'the audit API returns the list')
})
