import t, { type Test } from 'tap'
import type { ChannelConfig } from '../../server/config-notifications.ts'
import { Notifier } from '../../server/alerts/notifier.ts'
import { startReceiver } from './webhook-receiver.ts'
import { failedBackup } from './fixtures.ts'

/** Every HTTP channel against a local receiver, asserting the request its service expects. */

const base = { events: ['backup.failed' as const, 'target.stale' as const], timeoutMs: 5000 }
const BOT_TOKEN = '123456:AAH-secret-bot-token'
const NTFY_TOKEN = 'tk_secretntfytoken0123456789'

async function sendThrough (t: Test, make: (url: string) => ChannelConfig, answer = 'ok', status = 200) {
  const receiver = await startReceiver(status === 200 ? [] : [status], answer)
  t.teardown(receiver.stop)
  const channel = make(receiver.url)
  const notifier = new Notifier([channel])
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'backup.failed', backup: failedBackup })
  const hook = await receiver.next()
  await notifier.idle()
  return { hook, notifier, channel }
}

t.test('slack: an incoming-webhook message with text and blocks; markup in an error is escaped', async t => {
  const backup = { ...failedBackup, error: { code: 'PG_DUMP_FAILED', message: 'table <a&b> is locked' } }
  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  const notifier = new Notifier([{ ...base, name: 'ops-slack', type: 'slack', url: receiver.url }])
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'backup.failed', backup })
  const { body, headers } = await receiver.next()
  t.equal(headers['content-type'], 'application/json')
  t.equal(body.text, ':red_circle: pgkeep backup *default-app-20260101T000000Z-abc.dump* of default/app failed (PG_DUMP_FAILED: table &lt;a&amp;b&gt; is locked)')
  t.same(body.blocks[0], { type: 'header', text: { type: 'plain_text', text: 'Backup failed: default/app', emoji: true } })
  t.same(body.blocks[1], { type: 'section', text: { type: 'mrkdwn', text: body.text } })
  t.same(body.blocks[2].fields.slice(0, 3), [
    { type: 'mrkdwn', text: '*Target*\ndefault/app' },
    { type: 'mrkdwn', text: '*Backup*\ndefault-app-20260101T000000Z-abc.dump' },
    { type: 'mrkdwn', text: '*Error*\nPG_DUMP_FAILED: table &lt;a&amp;b&gt; is locked' },
  ])
  t.same(body.blocks.at(-1), { type: 'context', elements: [{ type: 'mrkdwn', text: 'pgkeep · backup.failed' }] })
})

t.test('discord: one embed with colour, fields and timestamp; mentions disabled', async t => {
  const { hook: { body } } = await sendThrough(t, url => ({ ...base, name: 'ops-discord', type: 'discord', url }))
  t.same(body.allowed_mentions, { parse: [] })
  t.equal(body.username, 'pgkeep')
  t.equal(body.embeds.length, 1)
  const [embed] = body.embeds
  t.equal(embed.title, 'Backup failed: default/app')
  t.equal(embed.description, 'pgkeep backup default-app-20260101T000000Z-abc.dump of default/app failed (PG_AUTH_FAILED: password authentication failed for user "postgres")')
  t.equal(embed.color, 0xd93025)
  t.same(embed.fields[0], { name: 'Target', value: 'default/app', inline: true })
  t.match(embed.fields[2], { name: 'Error', value: /^PG_AUTH_FAILED: /, inline: false })
  t.match(embed.timestamp, /^\d{4}-\d\d-\d\dT.*Z$/)
  t.same(embed.footer, { text: 'pgkeep · backup.failed' })
})

t.test('teams: an Adaptive Card message by default, a MessageCard for legacy connectors', async t => {
  const { hook: { body } } = await sendThrough(t, url => ({ ...base, name: 'ops-teams', type: 'teams', url, format: 'adaptive' }))
  t.equal(body.type, 'message')
  t.equal(body.attachments.length, 1)
  const [att] = body.attachments
  t.equal(att.contentType, 'application/vnd.microsoft.card.adaptive')
  t.equal(att.contentUrl, null)
  t.match(att.content, { type: 'AdaptiveCard', version: '1.4', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json' })
  t.match(att.content.body[0], { type: 'TextBlock', text: 'Backup failed: default/app', weight: 'Bolder', color: 'Attention', wrap: true })
  t.match(att.content.body[1], { type: 'TextBlock', text: /^pgkeep backup default-app-.* failed/ })
  t.same(att.content.body[2].facts[0], { title: 'Target', value: 'default/app' })
  t.same(att.content.body[2].facts.at(-1), { title: 'Event', value: 'backup.failed' })

  const { hook: legacy } = await sendThrough(t, url => ({ ...base, name: 'old-teams', type: 'teams', url, format: 'messagecard' }))
  t.match(legacy.body, { '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: 'Backup failed: default/app', themeColor: 'd93025', title: 'Backup failed: default/app' })
  t.same(legacy.body.sections[0].facts[0], { name: 'Target', value: 'default/app' })
})

t.test('telegram: sendMessage on the configured Bot API base with HTML the API accepts; the token only in the path', async t => {
  const answer = JSON.stringify({ ok: true, result: { message_id: 1 } })
  const { hook, notifier } = await sendThrough(t, url => ({ ...base, name: 'ops-telegram', type: 'telegram', botToken: BOT_TOKEN, chatId: '-1001234567890', apiUrl: new URL(url).origin }), answer)
  t.equal(hook.path, `/bot${BOT_TOKEN}/sendMessage`)
  t.equal(hook.body.chat_id, '-1001234567890')
  t.equal(hook.body.parse_mode, 'HTML')
  t.same(hook.body.link_preview_options, { is_disabled: true })
  t.match(hook.body.text, /^<b>Backup failed: default\/app<\/b>\npgkeep backup default-app-.* failed \(PG_AUTH_FAILED: password authentication failed for user "postgres"\)\n\nTarget: default\/app\n/)
  t.match(hook.body.text, /<i>backup\.failed<\/i>$/)
  t.same(notifier.list(), [{ name: 'ops-telegram', type: 'telegram', events: base.events, destination: `chat -1001234567890 via ${hook.headers.host}` }])
  t.notMatch(JSON.stringify(notifier.list()), /secret-bot-token/)

  // a refusal is reported with Telegram's description, the token cut out
  const refusing = await startReceiver([400], JSON.stringify({ ok: false, error_code: 400, description: 'Bad Request: chat not found' }))
  t.teardown(refusing.stop)
  const n2 = new Notifier([{ ...base, name: 'tg', type: 'telegram', botToken: BOT_TOKEN, chatId: '42', apiUrl: new URL(refusing.url).origin }])
  t.teardown(() => n2.close())
  const result = await n2.test('tg')
  t.match(result, { name: 'tg', type: 'telegram', ok: false, error: /^HTTP 400: .*Bad Request: chat not found/ })
  t.match((await refusing.next()).body.text, /^<b>Test message<\/b>\npgkeep test message for channel tg/)
})

t.test('ntfy: the message as the body, Title/Priority/Tags headers, a token as Bearer; non-ASCII titles RFC 2047 encoded', async t => {
  const { hook } = await sendThrough(t, url => ({ ...base, name: 'phone', type: 'ntfy', url, token: NTFY_TOKEN }))
  t.equal(hook.headers.title, 'Backup failed: default/app')
  t.equal(hook.headers.priority, '4')
  t.equal(hook.headers.tags, 'rotating_light,pgkeep,backup.failed')
  t.equal(hook.headers.authorization, `Bearer ${NTFY_TOKEN}`)
  t.match(hook.headers['content-type'], /^text\/plain; charset=utf-8/)
  t.match(hook.raw, /^pgkeep backup default-app-.* failed \(PG_AUTH_FAILED: .*\)\n\nTarget: default\/app\nBackup: default-app-/)

  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  const notifier = new Notifier([{ ...base, name: 'phone2', type: 'ntfy', url: receiver.url, username: 'ops', password: 'pw-Secr3t' }])
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'target.stale', target: { name: 'заказы', maxAgeHours: 48, lastBackupAt: '2026-01-01T00:00:00.000Z', lastBackupName: 'x.dump' } })
  const stale = await receiver.next()
  t.equal(stale.headers.title, `=?UTF-8?B?${Buffer.from('Target stale: заказы').toString('base64')}?=`)
  t.equal(stale.headers.authorization, `Basic ${Buffer.from('ops:pw-Secr3t').toString('base64')}`)
  t.match(stale.raw, /^pgkeep target заказы is stale: its newest completed backup is from 2026-01-01T00:00:00.000Z, older than 2 days/)
})

t.test('generic webhook: extra headers, and the JSON of every new event', async t => {
  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  const notifier = new Notifier([{
    name: 'hook', type: 'webhook', url: receiver.url, headers: { Authorization: 'Bearer hook-secret' }, timeoutMs: 5000,
    events: ['target.stale', 'storage.low', 'drill.failed', 'restore.finished'],
  }])
  t.teardown(() => notifier.close())
  notifier.notify({ event: 'target.stale', target: { name: 'orders', maxAgeHours: 26 } })
  notifier.notify({ event: 'storage.low', storage: { path: '/var/backups', freeBytes: 512 * 1024 ** 2, minFreeBytes: 1024 ** 3 } })
  // a drill record as the drills module keeps it: the failed checks say why
  notifier.drillFailed({
    id: 'd1', backupId: failedBackup.id, backupName: failedBackup.name, target: 'default',
    checks: [{ name: 'restore', ok: true, message: 'no errors' }, { name: 'rowCounts', ok: false, message: 'public.orders has 0 rows, expected 200' }, { name: 'objects', ok: false, skipped: true, message: 'not checked' }],
  })
  notifier.notify({ event: 'restore.finished', restore: { restoreId: 'r1', backupId: failedBackup.id, database: 'app_copy', status: 'completed', at: '2026-01-01T00:00:00.000Z' }, backup: { ...failedBackup, status: 'completed' } })
  const got = [await receiver.next(), await receiver.next(), await receiver.next(), await receiver.next()]
  t.equal(got[0].headers.authorization, 'Bearer hook-secret')
  t.match(got[0].body, { event: 'target.stale', target: { name: 'orders', maxAgeHours: 26 }, text: ':red_circle: pgkeep target *orders* is stale: it has no completed backup, older than 26 h' })
  t.match(got[1].body, { event: 'storage.low', storage: { path: '/var/backups' }, text: ':red_circle: pgkeep only 512.0 MiB free on */var/backups*, below the 1.0 GiB minimum' })
  t.match(got[2].body, { event: 'drill.failed', drill: { id: 'd1', backupId: failedBackup.id }, text: ':red_circle: pgkeep restore drill of *default-app-20260101T000000Z-abc.dump* (default) failed: rowCounts: public.orders has 0 rows, expected 200' })
  t.match(got[3].body, { event: 'restore.finished', restore: { status: 'completed' }, text: ':white_check_mark: pgkeep restore of backup *default-app-20260101T000000Z-abc.dump* into database *app_copy* completed' })
  t.same(notifier.list()[0].destination, new URL(receiver.url).host, 'the API sees the host, never the path or the headers')
})
