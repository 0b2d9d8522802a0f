import t from 'tap'
import type { ChannelConfig } from '../../../server/config-notifications.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { auditLines, build } from '../../helpers/app.ts'
import { startReceiver } from '../../alerts/webhook-receiver.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'notifications_app', { rows: 200 })

const BOT_TOKEN = '987654:AAH-route-test-token'

function withChannels (channels: ChannelConfig[]) {
  const config = testConfig(cluster, 'notifications_app')
  return { ...config, notifications: { ...config.notifications, channels } }
}

t.test('admins list the channels without secrets and send a test message that reports the delivery result', async t => {
  const slack = await startReceiver()
  const telegram = await startReceiver([], JSON.stringify({ ok: true, result: {} }))
  const gone = await startReceiver([404], 'no_service')
  for (const r of [slack, telegram, gone]) t.teardown(r.stop)
  const config = withChannels([
    { name: 'ops-slack', type: 'slack', url: slack.url, events: ['backup.failed'], timeoutMs: 5000 },
    { name: 'ops-telegram', type: 'telegram', botToken: BOT_TOKEN, chatId: '42', apiUrl: new URL(telegram.url).origin, events: ['target.stale'], timeoutMs: 5000 },
    { name: 'old-hook', type: 'slack', url: gone.url, events: ['backup.failed'], timeoutMs: 5000 },
  ])
  t.teardown(config.cleanup)
  const { app, as } = await build(t, config)

  t.equal((await as(undefined, { method: 'GET', url: '/api/notifications' })).statusCode, 401)
  for (const role of ['viewer', 'operator'] as const) {
    const list = await as(role, { method: 'GET', url: '/api/notifications' })
    t.equal(list.statusCode, 403, `${role} may not list`)
    const test = await as(role, { method: 'POST', url: '/api/notifications/ops-slack/test' })
    t.equal(test.statusCode, 403, `${role} may not test`)
  }
  t.equal(slack.received.length, 0, 'nothing was sent for a refused call')

  const list = await as('admin', { method: 'GET', url: '/api/notifications' })
  t.equal(list.statusCode, 200)
  t.same(list.json().items, [
    { name: 'ops-slack', type: 'slack', events: ['backup.failed'], destination: new URL(slack.url).host },
    { name: 'ops-telegram', type: 'telegram', events: ['target.stale'], destination: `chat 42 via ${new URL(telegram.url).host}` },
    { name: 'old-hook', type: 'slack', events: ['backup.failed'], destination: new URL(gone.url).host },
  ])
  t.notMatch(list.body, /SECRETPART|AAH-route-test-token/, 'no URL path, no token')

  const ok = await as('admin', { method: 'POST', url: '/api/notifications/ops-slack/test' })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { name: 'ops-slack', type: 'slack', ok: true, durationMs: Number })
  const sent = await slack.next()
  t.match(sent.body, { text: ':information_source: pgkeep test message for channel *ops-slack*: notifications reach this destination', blocks: [{ type: 'header', text: { text: 'Test message' } }] })

  t.match((await as('admin', { method: 'POST', url: '/api/notifications/ops-telegram/test' })).json(), { ok: true })
  t.equal((await telegram.next()).path, `/bot${BOT_TOKEN}/sendMessage`)

  const failed = await as('admin', { method: 'POST', url: '/api/notifications/old-hook/test' })
  t.equal(failed.statusCode, 200, 'the delivery result is the answer, whatever it is')
  t.match(failed.json(), { name: 'old-hook', ok: false, error: 'HTTP 404: no_service' })
  t.equal(gone.received.length, 1, 'a test is one attempt, not retried')

  const missing = await as('admin', { method: 'POST', url: '/api/notifications/nope/test' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { code: 'NOT_FOUND', message: 'notification channel "nope" not found' })
  t.equal((await as('admin', { method: 'POST', url: '/api/notifications/bad%20name/test' })).statusCode, 400)

  const lines = (await auditLines(app)).filter(l => l.action === 'notification.test')
  t.same(lines.map(l => [l.subject, l.outcome, l.user]), [
    ['ops-slack', 'denied', 'token:suite-viewer'],
    ['ops-slack', 'denied', 'token:suite-operator'],
    ['ops-slack', 'ok', 'token:suite-admin'],
    ['ops-telegram', 'ok', 'token:suite-admin'],
    ['old-hook', 'ok', 'token:suite-admin'],
    ['nope', 'failed', 'token:suite-admin'],
    ['bad name', 'failed', 'token:suite-admin'],
  ])
})

t.test('a channel that hangs or keeps failing never delays a backup; the others hear of it and of the restore', async t => {
  const hanging = await startReceiver([], 'ok', { silent: true })
  const failing = await startReceiver(Array(20).fill(503))
  const phone = await startReceiver()
  for (const r of [hanging, failing, phone]) t.teardown(r.stop)
  const events = ['backup.succeeded', 'restore.finished'] as ChannelConfig['events']
  const config = withChannels([
    { name: 'stuck', type: 'webhook', url: hanging.url, headers: {}, events, timeoutMs: 600_000 },
    { name: 'broken', type: 'discord', url: failing.url, events, timeoutMs: 5000 },
    { name: 'phone', type: 'ntfy', url: phone.url, events, timeoutMs: 5000 },
  ])
  t.teardown(config.cleanup)
  const { app, as, service, logs } = await build(t, config, { deps: { notifier: { baseDelayMs: 10, maxDelayMs: 20, attempts: 20 } } })
  const delivered: string[] = []
  app.notifier.on('delivered', (e: { channel: string, event: string }) => delivered.push(`${e.channel} ${e.event}`))

  const created = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { compression: 'none' } })
  t.equal(created.statusCode, 202)
  const backup = await service.waitFor(created.json().backup.id)
  t.equal(backup.status, 'completed')
  const stuck = await hanging.next()
  t.equal(stuck.body.event, 'backup.succeeded', 'the hanging channel has the notice and has not answered')
  const push = await phone.next()
  t.equal(push.headers.title, 'Backup completed: default/notifications_app')
  t.equal(push.headers.tags, 'white_check_mark,pgkeep,backup.succeeded')
  t.equal(push.headers.priority, '2')
  t.match(push.raw, new RegExp(`^pgkeep backup ${backup.name.replace(/\./g, '\\.')} of default/notifications_app completed \\(`))

  // the next backup is not held by the channels still busy with the first
  const second = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.equal(second.status, 'completed')
  t.equal((await phone.next()).headers.title, 'Backup completed: default/notifications_app')
  t.notOk(delivered.some(d => d.startsWith('stuck ')), 'the hanging channel never answered')

  const restore = await service.restore(backup.id, { database: 'notifications_app_copy', create: true })
  await restore.done
  const restored = await phone.next()
  t.equal(restored.headers.title, 'Restore completed: notifications_app_copy')
  t.match(restored.raw, new RegExp(`^pgkeep restore of backup ${backup.name.replace(/\./g, '\\.')} into database notifications_app_copy completed\n`))
  t.ok(failing.received.length >= 2, 'the failing channel was retried meanwhile')
  const retries = logs.filter(l => l.includes('notification not delivered yet'))
  t.ok(retries.length > 0, 'retries are logged')
  t.match(JSON.parse(retries[0]), { channel: 'broken', type: 'discord', event: 'backup.succeeded', reason: 'HTTP 503: ok' })
  t.notMatch(logs.join(''), /SECRETPART/, 'no webhook URL path in the log')
})

t.test('free space is looked at after every backup: a volume under minFreeBytes reaches the channels that want storage.low', async t => {
  const hook = await startReceiver()
  t.teardown(hook.stop)
  const config = withChannels([{ name: 'disk', type: 'webhook', url: hook.url, headers: {}, events: ['storage.low'], timeoutMs: 5000 }])
  t.teardown(config.cleanup)
  const { app, service } = await build(t, config)
  // more than any disk has: the real statfs of the backups directory says "low"
  app.config.minFreeBytes = Number.MAX_SAFE_INTEGER
  const backup = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.equal(backup.status, 'completed', 'the backup itself is not refused: readiness speaks for the floor')
  const low = await hook.next()
  t.match(low.body, { event: 'storage.low', storage: { path: app.config.backupDir, minFreeBytes: Number.MAX_SAFE_INTEGER }, text: /^:red_circle: pgkeep only .* free on \*.+\*, below the .* minimum$/ })
})
