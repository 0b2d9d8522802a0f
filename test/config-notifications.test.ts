import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig, type Config } from '../server/config.ts'
import { configuredChannels } from '../server/alerts/notifier.ts'

const SECRET = 'https://hooks.slack.com/services/T000/B000/Sup3rSecretPart'

function load (t: Test, file: unknown, env: Record<string, string> = {}, files: Record<string, string> = {}): Config {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-notify-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  writeFileSync(join(dir, 'pgkeep.json'), JSON.stringify(file))
  return loadConfig({ PGKEEP_BACKUP_DIR: dir, PGKEEP_CONFIG: join(dir, 'pgkeep.json'), ...env })
}

function refusal (t: Test, file: unknown, env: Record<string, string> = {}, files: Record<string, string> = {}): string {
  try {
    load(t, file, env, files)
  } catch (err) {
    const e = err as { code?: string, message: string }
    t.equal(e.code, 'CONFIG_INVALID')
    t.notMatch(e.message, /\n/, 'one line')
    t.notMatch(e.message, /Sup3rSecretPart|pw-Secr3t|AAH-token/, 'no secret in the message')
    return e.message.replace(/^invalid configuration: /, '')
  }
  t.fail('the configuration was accepted')
  return ''
}

t.test('channels are read with their defaults; secrets come inline, from ${ENV} or from a file', async t => {
  const config = load(t, {
    notifications: [
      { name: 'ops-slack', type: 'slack', url: '${SLACK_URL}', events: ['backup.failed', 'backup.succeeded', 'backup.failed'] },
      { name: 'phone', type: 'ntfy', url: 'https://ntfy.example/pgkeep', tokenFile: 'ntfy-token' },
      { name: 'bot', type: 'telegram', botTokenFile: 'bot-token', chatId: -1001234567890 },
      { name: 'mail', type: 'email', host: 'smtp.example', username: 'pgkeep', passwordFile: 'smtp-pw', from: 'pgkeep@example.com', to: ['ops@example.com'] },
      { name: 'teams', type: 'teams', url: 'https://example.webhook.office.com/x', timeoutSeconds: 3 },
    ],
    webhooks: ['https://hooks.example/legacy'],
    staleAfterHours: 26,
    notificationCheckMinutes: 2,
    targets: { main: { url: 'postgres://u@h/d', staleAfterHours: 8 }, other: { url: 'postgres://u@h/o' } },
  }, { SLACK_URL: SECRET }, { 'ntfy-token': 'tk_abc\n', 'bot-token': '123:AAH-token\n', 'smtp-pw': 'pw-Secr3t\n' })
  const [slack, ntfy, telegram, email, teams] = config.notifications.channels
  t.match(slack, { type: 'slack', url: SECRET, events: ['backup.failed', 'backup.succeeded'], timeoutMs: 10_000 })
  t.match(ntfy, { type: 'ntfy', token: 'tk_abc', events: ['backup.failed', 'backup.warning', 'validation.failed', 'schedule.missed', 'target.stale', 'drill.failed', 'storage.low'] })
  t.match(telegram, { type: 'telegram', botToken: '123:AAH-token', chatId: '-1001234567890', apiUrl: 'https://api.telegram.org' })
  t.match(email, { type: 'email', port: 587, tls: 'starttls', password: 'pw-Secr3t', subjectPrefix: '[pgkeep]' })
  t.match(teams, { type: 'teams', format: 'adaptive', timeoutMs: 3000 })
  t.equal(config.staleAfterHours, 26)
  t.equal(config.notifications.checkIntervalMs, 120_000)
  t.equal(config.targets.main.staleAfterHours, 8)
  t.equal(config.targets.other.staleAfterHours, undefined, 'the global default applies')
  t.match(configuredChannels(config).at(-1), { name: 'webhooks-1', type: 'webhook', url: 'https://hooks.example/legacy', events: ['backup.failed', 'backup.warning', 'validation.failed', 'schedule.missed', 'drill.failed'] })
  t.same(loadConfig({ PGKEEP_BACKUP_DIR: '/tmp' }).notifications, { channels: [], checkIntervalMs: 300_000 }, 'none configured: none')
})

t.test('a bad channel stops the start with one line naming the field', async t => {
  const slack = { name: 'ops', type: 'slack', url: SECRET }
  const cases: [unknown, string][] = [
    [[{ ...slack, type: 'pager' }], 'notifications[0].type: must be one of "webhook", "slack", "discord", "teams", "telegram", "ntfy", "email"'],
    [[{ type: 'slack', url: SECRET }], 'notifications[0]: is missing "name"'],
    [[slack, { ...slack }], 'notifications[1].name: "ops" is used by an earlier channel'],
    [[{ ...slack, events: ['backup.failed', 'backup.exploded'] }], 'notifications[0].events[1]: must be one of "backup.failed"'],
    [[{ ...slack, chanel: '#ops' }], 'notifications[0]: unknown field "chanel"'],
    [[{ name: 'ops', type: 'slack' }], 'notifications[0]: is missing "url" (or "urlFile")'],
    [[{ ...slack, urlFile: 'x' }], 'notifications[0].urlFile: give url or urlFile, not both'],
    [[{ name: 'ops', type: 'slack', urlFile: 'missing-file' }], 'notifications[0].urlFile: '],
    [[{ ...slack, url: 'hooks.slack.com/services/T000/B000/Sup3rSecretPart' }], 'notifications[0].url: is not a valid URL'],
    [[{ ...slack, url: 'ftp://hooks.example/Sup3rSecretPart' }], 'notifications[0].url: must be an http:// or https:// URL'],
    [[{ ...slack, url: '${NO_SUCH_VAR}' }], 'notifications[0].url: environment variable NO_SUCH_VAR is not set'],
    [[{ name: 'bot', type: 'telegram', botToken: '123:AAH-token' }], 'notifications[0]: is missing "chatId"'],
    [[{ name: 'bot', type: 'telegram', chatId: 1 }], 'notifications[0]: is missing "botToken" (or "botTokenFile")'],
    [[{ name: 'm', type: 'email', host: 'h', from: 'pgkeep@example.com', to: [] }], 'notifications[0].to: must not be empty'],
    [[{ name: 'm', type: 'email', host: 'h', from: 'pgkeep@example.com', to: ['ops at example'] }], 'notifications[0].to[0]: "ops at example" is not an e-mail address'],
    [[{ name: 'm', type: 'email', host: 'h', from: 'a@b.c', to: ['o@e.x'], tls: 'ssl' }], 'notifications[0].tls: must be one of "starttls", "implicit", "none"'],
    [[{ name: 'm', type: 'email', host: 'h', from: 'a@b.c', to: ['o@e.x'], password: 'pw-Secr3t' }], 'notifications[0].username: a username needs a password and a password a username'],
    [[{ name: 'n', type: 'ntfy', url: 'https://ntfy.sh/t', token: 'tk_x', username: 'u', password: 'pw-Secr3t' }], 'notifications[0].token: give an access token or a username and password, not both'],
    [[{ ...slack, timeoutSeconds: 0 }], 'notifications[0].timeoutSeconds: must be at least 1'],
  ]
  for (const [notifications, expected] of cases) {
    const message = refusal(t, { notifications })
    t.ok(message.startsWith(expected), `${JSON.stringify(notifications)} -> ${message}`)
  }
  t.match(refusal(t, { targets: { main: { url: 'postgres://u@h/d', staleAfterHours: -1 } } }), /^targets\.main\.staleAfterHours: must be at least 0/)
  t.match(refusal(t, { notificationCheckMinutes: 0 }), /^notificationCheckMinutes: must be at least 1/)
  t.equal(refusal(t, { webhooks: ['https://a.example/x'], notifications: [{ ...slack, name: 'webhooks-1' }] }),
    'notifications[0].name: "webhooks-1" is the name of webhooks[0]; choose another')
})
