import t from 'tap'
import { once } from 'node:events'
import type { Backup } from '../../schemas/backup.ts'
import { WebhookNotifier } from '../../server/alerts/webhook-notifier.ts'
import { backoffDelay } from '../../server/engine/retry.ts'
import { startReceiver } from './webhook-receiver.ts'

const failedBackup: Backup = {
  id: '019ab000-0000-7000-8000-000000000001',
  name: 'default-app-20260101T000000Z-abc.dump',
  target: 'default',
  database: 'app',
  format: 'custom',
  compression: 'zstd',
  level: 3,
  options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
  status: 'failed',
  createdAt: '2026-01-01T00:00:00.000Z',
  createdBy: 'alice',
  pinned: false,
  error: { code: 'PG_AUTH_FAILED', message: 'password authentication failed for user "postgres"' },
}

t.test('a failed backup is posted with a Slack-style text and retried after the receiver answers 500', async t => {
  const receiver = await startReceiver([500])
  t.teardown(receiver.stop)
  const notifier = new WebhookNotifier([receiver.url], { baseDelayMs: 50 })
  t.teardown(() => notifier.close())
  const delivered = once(notifier, 'delivered')
  notifier.backupFailed(failedBackup)
  const first = await receiver.next()
  const second = await receiver.next()
  const [info] = await delivered
  t.equal(first.body.event, 'backup.failed')
  t.same(second.body, first.body, 'the retry carries the same alert')
  t.match(second.body.text, /backup \*default-app-20260101T000000Z-abc\.dump\* of default\/app failed \(PG_AUTH_FAILED/)
  t.equal(second.body.backup.id, failedBackup.id)
  t.equal(second.headers['content-type'], 'application/json')
  t.ok(second.at - first.at >= 45, 'the retry waited for the backoff')
  t.equal(info.attempts, 2)
  t.notMatch(JSON.stringify(info), /SECRETPART/, 'the outcome event does not repeat the secret part of the URL')
})

t.test('deliveries wait the engine\'s full-jitter backoff: between the base and the doubling ceiling, never past the cap', async t => {
  const policy = { attempts: 4, baseDelayMs: 20, maxDelayMs: 50 }
  for (const [draw, expected] of [[0, [20, 20, 20]], [1 - Number.EPSILON, [40, 50, 50]]] as const) {
    const receiver = await startReceiver([503, 503, 503])
    t.teardown(receiver.stop)
    const notifier = new WebhookNotifier([receiver.url], { ...policy, random: () => draw })
    t.teardown(() => notifier.close())
    const waits: number[] = []
    notifier.on('retrying', e => waits.push(e.delayMs))
    const delivered = once(notifier, 'delivered')
    notifier.backupFailed(failedBackup)
    t.equal((await delivered)[0].attempts, 4)
    t.same(waits, expected, `draw ${draw}`)
    t.same(waits, [1, 2, 3].map(n => backoffDelay(n, policy, () => draw)), 'the same helper as the dump\'s retries')
  }
})

t.test('notify returns at once even when the receiver never answers', async t => {
  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  // a receiver that accepts the connection and then says nothing
  receiver.server.removeAllListeners('request')
  receiver.server.on('request', () => {})
  const notifier = new WebhookNotifier([receiver.url], { attempts: 2, baseDelayMs: 10, timeoutMs: 200 })
  t.teardown(() => notifier.close())
  const started = performance.now()
  notifier.backupFailed(failedBackup)
  // generous bound: the first fetch() loads undici synchronously; a held caller would wait >= 2 x 200 ms
  t.ok(performance.now() - started < 150, 'the caller is not held')
  const [gaveUp] = await once(notifier, 'gave-up')
  t.equal(gaveUp.attempts, 2)
  t.equal(gaveUp.reason, 'timed out')
})

t.test('retries are bounded and a client error is not retried', async t => {
  const receiver = await startReceiver([503, 503, 503, 503, 503, 404])
  t.teardown(receiver.stop)
  const notifier = new WebhookNotifier([receiver.url], { attempts: 3, baseDelayMs: 5 })
  t.teardown(() => notifier.close())
  notifier.scheduleMissed('nightly', { scheduledAt: '2026-01-01T02:00:00.000Z', reason: 'downtime', detectedAt: '2026-01-01T03:00:00.000Z', count: 1 })
  const [gaveUp] = await once(notifier, 'gave-up')
  t.equal(gaveUp.attempts, 3)
  t.equal(gaveUp.reason, 'HTTP 503')
  t.equal(receiver.received.length, 3)
  t.match(receiver.received[0].body.text, /schedule \*nightly\* missed its run at 2026-01-01T02:00:00.000Z: the server was not running/)

  const onlyNotFound = await startReceiver([404])
  t.teardown(onlyNotFound.stop)
  const n2 = new WebhookNotifier([onlyNotFound.url], { attempts: 5, baseDelayMs: 5 })
  n2.validationFailed({ ...failedBackup, status: 'completed', verification: { at: '2026-01-01T00:00:00.000Z', ok: false, method: 'sha256', message: 'sha256 mismatch' } })
  const [g2] = await once(n2, 'gave-up')
  t.equal(g2.attempts, 1)
  t.match(onlyNotFound.received[0].body.text, /validation of backup .* failed: sha256 mismatch/)
})

t.test('every configured URL gets the alert and idle() waits for all of them', async t => {
  const a = await startReceiver()
  const b = await startReceiver([500])
  t.teardown(a.stop)
  t.teardown(b.stop)
  const notifier = new WebhookNotifier([a.url, b.url], { baseDelayMs: 5 })
  notifier.backupFailed(failedBackup)
  await notifier.idle()
  t.equal(a.received.length, 1)
  t.equal(b.received.length, 2)
})
