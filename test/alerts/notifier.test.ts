import t from 'tap'
import { once } from 'node:events'
import type { ChannelConfig } from '../../server/config-notifications.ts'
import { configuredChannels, Notifier } from '../../server/alerts/notifier.ts'
import { backoffDelay } from '../../server/engine/retry.ts'
import { startReceiver } from './webhook-receiver.ts'
import { failedBackup } from './fixtures.ts'


/** The config file's plain `webhooks` list, as loadConfig gives it. */
function legacy (...urls: string[]): ChannelConfig[] {
  return configuredChannels({ webhooks: urls, notifications: { channels: [], checkIntervalMs: 60_000 } })
}

t.test('a failed backup is posted to a plain webhook with today\'s payload, retried after the receiver answers 500', async t => {
  const receiver = await startReceiver([500])
  t.teardown(receiver.stop)
  const notifier = new Notifier(legacy(receiver.url), { baseDelayMs: 50 })
  t.teardown(() => notifier.close())
  const delivered = once(notifier, 'delivered')
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  const first = await receiver.next()
  const second = await receiver.next()
  const [info] = await delivered
  t.equal(first.body.event, 'backup.failed')
  t.same(second.body, first.body, 'the retry carries the same alert')
  t.equal(second.body.text, ':red_circle: pgkeep backup *default-app-20260101T000000Z-abc.dump* of default/app failed (PG_AUTH_FAILED: password authentication failed for user "postgres")')
  t.same(second.body.backup, failedBackup)
  t.match(second.body.at, /^\d{4}-\d\d-\d\dT/)
  t.equal(second.headers['content-type'], 'application/json')
  t.ok(second.at - first.at >= 45, 'the retry waited for the backoff')
  t.match(info, { channel: 'webhooks-1', type: 'webhook', event: 'backup.failed', attempts: 2 })
  t.notMatch(JSON.stringify(info), /SECRETPART/, 'the outcome event does not repeat the secret part of the URL')
})

t.test('deliveries wait the engine\'s full-jitter backoff: between the base and the doubling ceiling, never past the cap', async t => {
  const policy = { attempts: 4, baseDelayMs: 20, maxDelayMs: 50 }
  for (const [draw, expected] of [[0, [20, 20, 20]], [1 - Number.EPSILON, [40, 50, 50]]] as const) {
    const receiver = await startReceiver([503, 503, 503])
    t.teardown(receiver.stop)
    const notifier = new Notifier(legacy(receiver.url), { ...policy, random: () => draw })
    t.teardown(() => notifier.close())
    const waits: number[] = []
    notifier.on('retrying', (e: { delayMs: number }) => waits.push(e.delayMs))
    const delivered = once(notifier, 'delivered')
    notifier.notify({ event: 'backup.failed', backup: failedBackup })
    t.equal((await delivered)[0].attempts, 4)
    t.same(waits, expected, `draw ${draw}`)
    t.same(waits, [1, 2, 3].map(n => backoffDelay(n, policy, () => draw)), 'the same helper as the dump\'s retries')
  }
})

t.test('a service\'s Retry-After is a floor for the next wait, within the cap', async t => {
  const receiver = await startReceiver([429], '{"ok":false,"error_code":429,"parameters":{"retry_after":0.2}}')
  t.teardown(receiver.stop)
  const notifier = new Notifier(legacy(receiver.url), { baseDelayMs: 5, maxDelayMs: 1000, random: () => 0 })
  t.teardown(() => notifier.close())
  const [retrying] = await (async () => {
    const p = once(notifier, 'retrying')
    notifier.notify({ event: 'backup.failed', backup: failedBackup })
    return await p
  })()
  t.equal(retrying.delayMs, 200)
  await notifier.idle()
  t.equal(receiver.received.length, 2)
})

t.test('notify returns at once even when the receiver never answers, and each attempt is cut at the timeout', async t => {
  const receiver = await startReceiver([], 'ok', { silent: true })
  t.teardown(receiver.stop)
  const [channel] = legacy(receiver.url)
  const notifier = new Notifier([{ ...channel, timeoutMs: 200 }], { attempts: 2, baseDelayMs: 10 })
  t.teardown(() => notifier.close())
  const started = performance.now()
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  // generous bound: the first fetch() loads undici synchronously; a held caller would wait >= 2 x 200 ms
  t.ok(performance.now() - started < 150, 'the caller is not held')
  const [gaveUp] = await once(notifier, 'gave-up')
  t.equal(gaveUp.attempts, 2)
  t.equal(gaveUp.reason, 'timed out')
})

t.test('retries are bounded and a client error is not retried', async t => {
  const receiver = await startReceiver([503, 503, 503, 503, 503, 404])
  t.teardown(receiver.stop)
  const notifier = new Notifier(legacy(receiver.url), { attempts: 3, baseDelayMs: 5 })
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'schedule.missed', schedule: { name: 'nightly', scheduledAt: '2026-01-01T02:00:00.000Z', reason: 'downtime', detectedAt: '2026-01-01T03:00:00.000Z', count: 1 } })
  const [gaveUp] = await once(notifier, 'gave-up')
  t.equal(gaveUp.attempts, 3)
  t.equal(gaveUp.reason, 'HTTP 503: ok')
  t.equal(receiver.received.length, 3)
  t.match(receiver.received[0].body.text, /schedule \*nightly\* missed its run at 2026-01-01T02:00:00.000Z: the server was not running/)

  const onlyNotFound = await startReceiver([404], 'no_service')
  t.teardown(onlyNotFound.stop)
  const n2 = new Notifier(legacy(onlyNotFound.url), { attempts: 5, baseDelayMs: 5 })
  t.teardown(() => n2.close())
  n2.notify({ event: 'validation.failed', backup: { ...failedBackup, status: 'completed', verification: { at: '2026-01-01T00:00:00.000Z', ok: false, method: 'sha256', message: 'sha256 mismatch' } } })
  const [g2] = await once(n2, 'gave-up')
  t.equal(g2.attempts, 1)
  t.equal(g2.reason, 'HTTP 404: no_service', 'the service\'s answer says why')
  t.match(onlyNotFound.received[0].body.text, /validation of backup .* failed: sha256 mismatch/)
})

t.test('every channel gets only the events it asked for, and idle() waits for all of them', async t => {
  const a = await startReceiver()
  const b = await startReceiver([500])
  t.teardown(a.stop)
  t.teardown(b.stop)
  const [hookA, hookB] = legacy(a.url, b.url)
  const notifier = new Notifier([hookA, { ...hookB, name: 'successes', events: ['backup.succeeded'] }], { baseDelayMs: 5 })
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  notifier.notify({ event: 'backup.succeeded', backup: { ...failedBackup, status: 'completed', error: undefined, sizeBytes: 3 * 1024 * 1024 } })
  await notifier.idle()
  t.same(a.received.map(h => h.body.event), ['backup.failed'], 'the plain webhooks keep their events: success is opt-in')
  t.same(b.received.map(h => h.body.event), ['backup.succeeded', 'backup.succeeded'])
  t.match(b.received[1].body.text, /:white_check_mark: pgkeep backup \*default-app-.*\* of default\/app completed \(3\.0 MiB\)/)
})

t.test('a channel that hangs holds up neither the caller nor the other channels', async t => {
  const hanging = await startReceiver([], 'ok', { silent: true })
  const quick = await startReceiver()
  t.teardown(hanging.stop)
  t.teardown(quick.stop)
  const [slow, fast] = legacy(hanging.url, quick.url)
  const notifier = new Notifier([{ ...slow, timeoutMs: 60_000 }, fast])
  t.teardown(() => notifier.close())
  for (let i = 0; i < 4; i++) notifier.notify({ event: 'backup.failed', backup: { ...failedBackup, name: `b${i}` } })
  await hanging.next()
  while (quick.received.length < 4) await quick.next()
  t.same(quick.received.map(h => h.body.backup.name), ['b0', 'b1', 'b2', 'b3'], 'the other channel got every notice, in order')
  t.equal(hanging.received.length, 1, 'the hanging channel is still on its first')
})

t.test('a channel\'s queue is bounded: past the limit the oldest waiting notice is dropped and said so', async t => {
  const hanging = await startReceiver([], 'ok', { silent: true })
  t.teardown(hanging.stop)
  const notifier = new Notifier(legacy(hanging.url), { queueLimit: 2 })
  t.teardown(() => notifier.close())
  const dropped: unknown[] = []
  notifier.on('dropped', e => dropped.push(e))
  for (let i = 0; i < 4; i++) notifier.notify({ event: 'backup.failed', backup: { ...failedBackup, name: `b${i}` } })
  t.equal((await hanging.next()).body.backup.name, 'b0')
  t.same(dropped, [{ channel: 'webhooks-1', type: 'webhook', event: 'backup.failed' }], 'b1 dropped: b0 in flight, b2 and b3 kept')
})

t.test('a channel\'s secrets never appear in a reason, whatever the service echoes', async t => {
  const receiver = await startReceiver([400])
  t.teardown(receiver.stop)
  // the receiver echoes the URL path back, as a careless proxy might
  receiver.server.removeAllListeners('request')
  receiver.server.on('request', (req, res) => { res.statusCode = 400; res.end(`bad hook ${req.url}`) })
  const notifier = new Notifier(legacy(receiver.url))
  t.teardown(() => notifier.close())
  const result = await notifier.test('webhooks-1')
  t.equal(result.ok, false)
  t.equal(result.error, 'HTTP 400: bad hook [redacted]')
})
