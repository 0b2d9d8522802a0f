import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSlowRestoreDatabase } from '../../helpers/sample-db.ts'
import { waitUntil } from '../../helpers/service.ts'
import { settingsFor } from '../../../server/engine/drill/drill-service.ts'
import { startReceiver } from '../../alerts/webhook-receiver.ts'
import { auditLines, setupApp } from '../helper.ts'
import { Inbox } from '../live-helpers.ts'
import { drillCopying, leftDrillDatabases } from '../../helpers/drill-databases.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSlowRestoreDatabase(cluster, 'drills_slowsrc', 2000)
const receiver = await startReceiver()
t.teardown(receiver.stop)

const { app, as, token, completedBackup } = await setupApp(t, cluster, 'drills_slowsrc', {}, { webhooks: [receiver.url] })
const UNKNOWN_ID = '01936f6e-0000-7000-8000-000000000000'

const drillDatabases = async (): Promise<string[]> => await leftDrillDatabases(cluster, app.config.backupDir)

async function liveSocket (t: Test): Promise<Inbox> {
  let inbox!: Inbox
  const ws = await app.injectWS('/api/backup/ws', { headers: { authorization: `Bearer ${token.viewer}` } }, { onInit: (s: WebSocket) => { inbox = new Inbox(s) } })
  t.teardown(() => ws.terminate())
  await inbox.next(m => m.type === 'snapshot')
  return inbox
}

const backupId = await completedBackup({ format: 'custom', countRows: true })

t.test('a viewer cannot start a drill; an operator can, and viewers follow it live to its end', async t => {
  const denied = await as('viewer', { method: 'POST', url: '/api/drills', payload: { backupId } })
  t.equal(denied.statusCode, 403)
  t.same(await drillDatabases(), [])
  const inbox = await liveSocket(t)
  const res = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId } })
  t.equal(res.statusCode, 202)
  const { drill } = res.json()
  t.match(drill, { backupId, status: 'running', database: /^pgkeep_drill_/ })
  const progress = await inbox.next(m => m.type === 'drill' && m.id === drill.id && m.progress?.phase === 'restoring')
  t.ok(progress)
  const end = await inbox.next(m => m.type === 'drill' && m.id === drill.id && m.status !== 'running', 120_000)
  t.equal(end.status, 'passed')
  t.same(inbox.invalid, [], 'every event matches schemas/events.ts')
  const got = await as('viewer', { method: 'GET', url: `/api/drills/${drill.id}` })
  t.equal(got.statusCode, 200)
  t.same(got.json().checks.map((c: { kind: string }) => c.kind), ['restore', 'objects', 'rowCounts'])
  const list = await as('viewer', { method: 'GET', url: `/api/drills?backupId=${backupId}` })
  t.ok(list.json().items.some((d: { id: string }) => d.id === drill.id))
  await waitUntil(() => app.backupService.get(backupId).drill?.id === drill.id, 15_000, 'the backup to carry the drill')
  const status = await as('viewer', { method: 'GET', url: `/api/backup/status/${backupId}` })
  t.match(status.json().backup.drill, { id: drill.id, ok: true })
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /pgkeep_drill_last_success_timestamp_seconds\{target="default"\} \d+/)
  t.match(metrics.body, /pgkeep_drill_duration_seconds\{target="default"\} [\d.]+/)
  t.match((await auditLines(app)).filter(l => l.action === 'drill.start'), [{ outcome: 'denied' }, { outcome: 'ok', backupId }])
  t.same(await drillDatabases(), [])
})

t.test('cancelling a drill mid-restore ends it cancelled and drops its scratch database', async t => {
  const res = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId } })
  const { drill } = res.json()
  await waitUntil(async () => await drillCopying(cluster, drill.database), 60_000, 'the drill to be copying')
  const cancelled = await as('operator', { method: 'POST', url: `/api/drills/${drill.id}/cancel` })
  t.equal(cancelled.statusCode, 200)
  t.match(cancelled.json(), { id: drill.id, status: 'cancelled', error: { code: 'CANCELLED' } })
  t.same(await drillDatabases(), [])
  const again = await as('operator', { method: 'POST', url: `/api/drills/${drill.id}/cancel` })
  t.equal(again.statusCode, 409)
})

t.test('bad requests get a clear 4xx', async t => {
  const unknown = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId: UNKNOWN_ID } })
  t.match({ status: unknown.statusCode, body: unknown.json() }, { status: 404, body: { code: 'NOT_FOUND' } })
  const target = await as('operator', { method: 'POST', url: '/api/drills', payload: { target: 'nope' } })
  t.match({ status: target.statusCode, body: target.json() }, { status: 400, body: { code: 'INVALID_INPUT', message: /unknown target "nope"/ } })
  const extra = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId, database: 'x' } })
  t.equal(extra.statusCode, 400)
  const failed = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { schemas: ['no_such_schema'] } })
  await app.backupService.waitFor(failed.json().backup.id)
  const notCompleted = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId: failed.json().backup.id } })
  t.match({ status: notCompleted.statusCode, body: notCompleted.json() }, { status: 409, body: { code: 'INVALID_STATE' } })
  const missing = await as('viewer', { method: 'GET', url: `/api/drills/${UNKNOWN_ID}` })
  t.equal(missing.statusCode, 404)
  const badId = await as('viewer', { method: 'GET', url: '/api/drills/not-an-id' })
  t.equal(badId.statusCode, 400)
})

t.test('a failed drill sends the drill.failed webhook', async t => {
  const config = app.config
  config.drill = { default: { ...settingsFor(config, 'default')!, assertions: [{ name: 'never', sql: 'SELECT false' }] } }
  t.teardown(() => { delete config.drill })
  const res = await as('operator', { method: 'POST', url: '/api/drills', payload: { backupId } })
  const { drill } = res.json()
  let hook = await receiver.next()
  while (hook.body.event !== 'drill.failed') hook = await receiver.next()
  t.match(hook.body, { event: 'drill.failed', drill: { id: drill.id, status: 'failed' }, text: /restore drill .* failed: never: returned false, expected true/ })
})
