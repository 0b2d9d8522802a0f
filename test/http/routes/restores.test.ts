import { truncateSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { BackupService } from '../../../server/engine/backup-service.ts'
import type { RestoreState } from '../../../schemas/restore.ts'
import { createSlowRestoreDatabase, testConfig } from '../../helpers/sample-db.ts'
import { FAST_RETRY, waitUntil } from '../../helpers/service.ts'
import { auditLines, setupApp } from '../helper.ts'
import { Inbox } from '../live-helpers.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSlowRestoreDatabase(cluster, 'restores_slowsrc', 2000)

const { app, as, token, completedBackup } = await setupApp(t, cluster, 'restores_slowsrc')
const UNKNOWN_ID = '01936f6e-0000-7000-8000-000000000000'

async function startRestore (backupId: string, database: string): Promise<string> {
  const res = await as('admin', { method: 'POST', url: `/api/backup/${backupId}/restore`, payload: { database, create: true } })
  if (res.statusCode !== 202) throw new Error(res.body)
  return res.json().restore.id
}

/** Restores are admin-only over HTTP, so on the socket too: only an admin's hears of them. */
async function liveSocket (t: Test, role: 'viewer' | 'admin' = 'admin'): Promise<Inbox> {
  let inbox!: Inbox
  const ws = await app.injectWS('/api/backup/ws', { headers: { authorization: `Bearer ${token[role]}` } }, { onInit: (s: WebSocket) => { inbox = new Inbox(s) } })
  t.teardown(() => ws.terminate())
  await inbox.next(m => m.type === 'snapshot')
  return inbox
}

const copying = async (restoreId: string): Promise<boolean> =>
  Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-restore-${restoreId}' AND query LIKE 'COPY%'`)) > 0

t.test('a running restore is readable by id, listed in a new admin\'s snapshot (not a viewer\'s), and cancelled on request', async t => {
  const backupId = await completedBackup({ format: 'custom', compression: 'zstd' })
  const id = await startRestore(backupId, 'restores slow copy')
  const running = await as('admin', { method: 'GET', url: `/api/restore/${id}` })
  t.equal(running.statusCode, 200)
  t.match(running.json(), { restoreId: id, backupId, database: 'restores slow copy', status: 'running', at: String })
  await waitUntil(() => copying(id), 30_000, 'the restore to be copying rows')

  const inbox = await liveSocket(t)
  t.match(inbox.messages[0].restores, [{ restoreId: id, status: 'running' }], 'the snapshot lists the running restore')
  const viewer = await liveSocket(t, 'viewer')
  t.same(viewer.messages[0], { type: 'snapshot', jobs: [] }, 'a viewer\'s snapshot does not')

  for (const role of ['viewer', 'operator'] as const) {
    t.equal((await as(role, { method: 'GET', url: `/api/restore/${id}` })).statusCode, 403, `${role} may not read it`)
    const refused = await as(role, { method: 'POST', url: `/api/restore/${id}/cancel` })
    t.equal(refused.statusCode, 403, `${role} may not cancel it`)
    t.equal(refused.json().code, 'FORBIDDEN')
  }
  t.equal((await as(undefined, { method: 'GET', url: `/api/restore/${id}` })).statusCode, 401)
  t.equal((await as('admin', { method: 'GET', url: `/api/restore/${id}` })).json().status, 'running', 'refused cancels changed nothing')

  const cancelled = await as('admin', { method: 'POST', url: `/api/restore/${id}/cancel` })
  t.equal(cancelled.statusCode, 200)
  t.match(cancelled.json(), { restoreId: id, status: 'cancelled', error: { code: 'CANCELLED' } })
  t.equal((await as('admin', { method: 'GET', url: `/api/restore/${id}` })).json().status, 'cancelled', 'the ended state stays readable')
  const ended = await inbox.next(m => m.type === 'restore' && m.restoreId === id && m.status !== 'running')
  t.equal(ended.status, 'cancelled', 'admins see it cancelled')
  t.equal(Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-restore-${id}'`)), 0, 'no backend remains')

  const again = await as('admin', { method: 'POST', url: `/api/restore/${id}/cancel` })
  t.equal(again.statusCode, 409)
  t.match(again.json(), { statusCode: 409, code: 'INVALID_STATE', error: String, message: /already cancelled/ })
  const audit = (await auditLines(app)).filter(l => l.action === 'restore.cancel')
  t.match(audit.map(l => [l.role, l.outcome, l.backupId]), [['viewer', 'denied'], ['operator', 'denied'], ['admin', 'ok', backupId], ['admin', String, backupId]])
  t.same(inbox.invalid, [])
  // an event every role gets, sent after the restore's end: once the viewer has it, it has all it will get
  await as('operator', { method: 'POST', url: `/api/backup/${backupId}/pin`, payload: { pinned: true } })
  await viewer.next(m => m.type === 'status' && m.backupId === backupId)
  t.same(viewer.messages.filter(m => m.type === 'restore'), [], 'the viewer never heard of the restore: database names and errors are admin-only')
})

t.test('an unknown restore is NOT_FOUND and a malformed id INVALID_INPUT, in the usual error shape', async t => {
  for (const req of [{ method: 'GET', url: `/api/restore/${UNKNOWN_ID}` }, { method: 'POST', url: `/api/restore/${UNKNOWN_ID}/cancel` }] as const) {
    const res = await as('admin', req)
    t.equal(res.statusCode, 404)
    t.match(res.json(), { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: String })
  }
  const bad = await as('admin', { method: 'GET', url: '/api/restore/nope' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'INVALID_INPUT')
})

t.test('admins follow a restore to completed: valid restore events, percent never goes back, ending at 100', async t => {
  const backupId = await completedBackup({ format: 'plain', compression: 'gzip' })
  const inbox = await liveSocket(t)
  const id = await startRestore(backupId, 'restored_ws')
  const end = await inbox.next(m => m.type === 'restore' && m.restoreId === id && m.status !== 'running', 60_000)
  t.equal(end.status, 'completed', JSON.stringify(end.error))
  t.match(end, { backupId, database: 'restored_ws', progress: { percent: 100 } })
  const events = inbox.messages.filter(m => m.type === 'restore' && m.restoreId === id)
  t.equal(events[0].status, 'running', 'the first event says it started')
  t.equal(events.at(-1), end, 'nothing follows the end')
  const percents = events.map(e => e.progress?.percent ?? 0)
  t.ok(percents.every((p, i) => i === 0 || p >= percents[i - 1]), `percent is monotonic: ${percents.join(' ')}`)
  t.ok(events.every(e => e.progress === undefined || e.progress.bytes <= e.progress.totalBytes), 'bytes within the backup size')
  t.same(inbox.invalid, [], 'every message validated against ServerEvent')
  t.equal((await cluster.psql('SELECT count(*) FROM slow', 'restored_ws')).trim(), '2000')
  t.equal((await as('admin', { method: 'GET', url: `/api/restore/${id}` })).json().status, 'completed')
})

t.test('a failed restore keeps its error code and message, and a finished state is forgotten after restoreKeepMs', async t => {
  await cluster.createDatabase('restores_tiny')
  await cluster.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);', 'restores_tiny')
  const config = testConfig(cluster, 'restores_tiny')
  t.teardown(config.cleanup)
  const service = await BackupService.open(config, { retry: FAST_RETRY, restoreKeepMs: 300 })
  t.teardown(() => service.close({ cancelRunning: true }))
  const seen: RestoreState[] = []
  service.on('restore', s => seen.push(s))
  const backup = await service.waitFor((await service.create({ format: 'custom', compression: 'none' }, 'test')).id)
  t.equal(backup.status, 'completed')

  await t.rejects(service.restore(backup.id, { database: 'no such database' }), { code: 'NOT_FOUND', message: /does not exist; restore with create/ },
    'a database that is not there is refused before the restore starts')
  // a backup cut short on disk fails once the restore runs
  truncateSync(join(config.backupDir, backup.name), 10)
  const failing = await service.restore(backup.id, { database: 'restores tiny copy', create: true })
  await failing.done.catch(() => {})
  await waitUntil(() => service.restoreState(failing.id).status !== 'running', 5000, 'the failure to be recorded')
  const failed = service.restoreState(failing.id)
  t.match(failed, { status: 'failed', error: { code: String, message: String } })
  t.not(failed.error?.code, 'CANCELLED')
  t.same(service.activeRestores(), [], 'nothing is running any more')
  await t.rejects(service.cancelRestore(failing.id), { code: 'INVALID_STATE' })
  t.same(seen.filter(s => s.restoreId === failing.id).map(s => s.status).at(-1), 'failed', 'the failure was announced')

  await waitUntil(() => { try { service.restoreState(failing.id); return false } catch { return true } }, 5000, 'the state to expire')
  t.throws(() => service.restoreState(failing.id), { code: 'NOT_FOUND' })
  await t.rejects(service.cancelRestore(failing.id), { code: 'NOT_FOUND' })
})

t.test('restoring into a database that holds objects is 409 TARGET_NOT_EMPTY; clean replaces it, and the audit entry says which database and how', async t => {
  const backupId = await completedBackup({ format: 'custom', compression: 'none' })
  await cluster.createDatabase('restores busy')
  await cluster.psql('CREATE TABLE mine (x int)', 'restores busy')
  const refused = await as('admin', { method: 'POST', url: `/api/backup/${backupId}/restore`, payload: { database: 'restores busy' } })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { statusCode: 409, code: 'TARGET_NOT_EMPTY', error: 'Conflict', message: /database "restores busy" on target "default" is not empty \(table mine\)/ })
  const both = await as('admin', { method: 'POST', url: `/api/backup/${backupId}/restore`, payload: { database: 'restores busy', clean: true, merge: true } })
  t.equal(both.statusCode, 400)
  t.equal(both.json().code, 'INVALID_INPUT')

  const res = await as('admin', { method: 'POST', url: `/api/backup/${backupId}/restore`, payload: { database: 'restores busy', clean: true } })
  t.equal(res.statusCode, 202, res.body)
  t.match(res.json(), { restore: { backupId, database: 'restores busy', mode: 'replace' } })
  await app.backupService.cancelRestore(res.json().restore.id).catch(() => {})
  const audit = (await auditLines(app)).filter(l => l.action === 'backup.restore' && l.backupId === backupId)
  t.match(audit.map(l => [l.outcome, l.code, l.subject]), [
    ['failed', 'TARGET_NOT_EMPTY', undefined],
    ['failed', 'INVALID_INPUT', undefined],
    ['ok', undefined, 'database "restores busy" on target default: replaced; the existing database is dropped once the restore succeeded'],
  ])
})
