import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { waitUntil } from '../../helpers/service.ts'
import { startReceiver } from '../../alerts/webhook-receiver.ts'
import { auditLines, build, tokenFor } from '../../helpers/app.ts'
import { hoursBeforeThisHour } from '../../helpers/schedule-time.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'schedules_app', { rows: 500 })

const auth = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('admins create, read, change and delete schedules; others are refused; next runs are in every reply', async t => {
  const config = testConfig(cluster, 'schedules_app')
  t.teardown(config.cleanup)
  const { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const operator = await tokenFor(app, 'operator')
  const viewer = await tokenFor(app, 'viewer')
  const body = { name: 'nightly', cron: '30 2 * * *', timezone: 'UTC', backup: { compression: 'gzip' }, retention: { keepDaily: 7 } }

  t.equal((await app.inject({ method: 'GET', url: '/api/schedules' })).statusCode, 401)
  for (const token of [viewer, operator]) {
    const res = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(token), payload: body })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'FORBIDDEN')
    t.equal((await app.inject({ method: 'GET', url: '/api/schedules', headers: auth(token) })).statusCode, 403)
  }

  const created = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: body })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { name: 'nightly', source: 'api', enabled: true, createdBy: 'token:t-admin', missed: [] })
  t.equal(created.json().nextRuns.length, 5)
  t.match(created.json().nextRuns[0], /T02:30:00\.000Z$/)

  const dup = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: body })
  t.equal(dup.statusCode, 409)
  t.equal(dup.json().code, 'CONFLICT')

  const patched = await app.inject({ method: 'PATCH', url: '/api/schedules/nightly', headers: auth(admin), payload: { cron: '0 3 * * *' } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json().nextRuns[0], /T03:00:00\.000Z$/)
  t.equal(patched.json().retention.keepDaily, 7, 'fields not in the patch are kept')

  const list = await app.inject({ method: 'GET', url: '/api/schedules', headers: auth(admin) })
  t.same(list.json().items.map((s: { name: string }) => s.name), ['nightly'])
  t.equal((await app.inject({ method: 'GET', url: '/api/schedules/nightly', headers: auth(admin) })).json().cron, '0 3 * * *')

  const del = await app.inject({ method: 'DELETE', url: '/api/schedules/nightly', headers: auth(admin) })
  t.same(del.json(), { deleted: 'nightly' })
  t.equal((await app.inject({ method: 'GET', url: '/api/schedules/nightly', headers: auth(admin) })).statusCode, 404)

  const audit = readFileSync(`${config.backupDir}/.pgkeep/audit.jsonl`, 'utf8')
  for (const action of ['schedule.create', 'schedule.update', 'schedule.delete']) t.match(audit, action, `audit line for ${action}`)
})

t.test('bad bodies and names get 400 with a code and store nothing', async t => {
  const config = testConfig(cluster, 'schedules_app')
  t.teardown(config.cleanup)
  const { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const bad: unknown[] = [
    { name: 'x', cron: '61 * * * *' },
    { name: 'x', cron: '* * * * *', timezone: 'Mars/Olympus' },
    { name: '../etc', cron: '* * * * *' },
    { name: 'x', cron: '* * * * *', surprise: true },
    { name: 'x', cron: '* * * * *', backup: { format: 'zip' } },
    { name: 'x', cron: '* * * * *', retention: { keepLast: 0 } },
    { name: 'x', cron: 42 },
    { name: 'x', cron: '* * * * *', backup: { name: 'a'.repeat(5000) } },
  ]
  for (const payload of bad) {
    const res = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: payload as object })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80))
    t.equal(res.json().code, 'INVALID_INPUT')
  }
  t.equal((await app.inject({ method: 'PATCH', url: '/api/schedules/..%2f..%2fetc', headers: auth(admin), payload: { enabled: false } })).statusCode, 400)
  t.equal((await app.inject({ method: 'PATCH', url: '/api/schedules/nope', headers: auth(admin), payload: {} })).statusCode, 400, 'an empty patch')
  t.equal((await app.inject({ method: 'PATCH', url: '/api/schedules/nope', headers: auth(admin), payload: { enabled: false } })).statusCode, 404)
  t.same((await app.inject({ method: 'GET', url: '/api/schedules', headers: auth(admin) })).json().items, [])
})

t.test('a schedule that could only fail when it runs is refused when saved, in the words the config file gets', async t => {
  const config = testConfig(cluster, 'schedules_app')
  t.teardown(config.cleanup)
  const { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const cases: [Record<string, unknown>, string][] = [
    [{ backup: { target: 'nope' } }, 'backup.target: unknown target "nope"; configured: default'],
    [{ backup: { compression: 'none', level: 3 } }, 'backup.level: cannot be set when compression is none'],
    [{ backup: { compression: 'gzip', level: 12 } }, 'backup.level: level for gzip must be between 1 and 9'],
    [{ backup: { schemaOnly: true, dataOnly: true } }, 'backup.dataOnly: schemaOnly and dataOnly cannot both be set'],
    [{ backup: { format: 'custom', jobs: 4 } }, 'backup.jobs: parallel dumps need the directory format'],
    [{ retention: {} }, 'retention: the policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly'],
    [{ cron: '*/5 * * *' }, 'cron: "*/5 * * *" has 4 fields, expected 5 (minute hour day month weekday) or 6 (seconds first)'],
    [{ timezone: 'Europe/Pariss' }, 'timezone: unknown time zone "Europe/Pariss"'],
  ]
  for (const [change, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: { name: 'x', cron: '0 2 * * *', ...change } })
    t.equal(res.statusCode, 400, message)
    t.match(res.json(), { code: 'INVALID_INPUT', message })
    t.notMatch(res.json().message, /\n/, 'one line')
  }
  const ok = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: { name: 'x', cron: '0 2 * * *', backup: { compression: 'gzip', level: 9 } } })
  t.equal(ok.statusCode, 201)
  const patched = await app.inject({ method: 'PATCH', url: '/api/schedules/x', headers: auth(admin), payload: { backup: { target: 'nope' } } })
  t.match(patched.json(), { statusCode: 400, code: 'INVALID_INPUT', message: 'backup.target: unknown target "nope"; configured: default' })
  t.same((await app.inject({ method: 'GET', url: '/api/schedules/x', headers: auth(admin) })).json().backup, { compression: 'gzip', level: 9 }, 'the refused change was not stored')
})

t.test('a seconds-level schedule created over the API fires, survives a restart of the app, and config ones are read-only', async t => {
  const config = { ...testConfig(cluster, 'schedules_app'), schedules: [{ name: 'from-config', cron: '0 0 * * *' }] }
  t.teardown(config.cleanup)
  let { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const res = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: { name: 'fast', cron: '*/2 * * * * *', backup: { compression: 'none' } } })
  t.equal(res.statusCode, 201)
  await waitUntil(() => app.backupService.list({}).items.some(b => b.scheduleId === 'fast' && b.status === 'completed'), 20_000, 'a scheduled backup')
  await app.close()

  ;({ app } = await build(t, config, { service: 'app' }))
  const list = (await app.inject({ method: 'GET', url: '/api/schedules', headers: auth(admin) })).json()
  t.same(list.items.map((s: { name: string, source: string }) => [s.name, s.source]), [['fast', 'api'], ['from-config', 'config']])
  const fast = list.items[0]
  t.ok(fast.lastBackupId, 'the last run is remembered')
  const before = app.backupService.list({}).items.filter(b => b.scheduleId === 'fast').length
  await waitUntil(() => app.backupService.list({}).items.filter(b => b.scheduleId === 'fast').length > before, 20_000, 'a run after the restart')
  const off = await app.inject({ method: 'PATCH', url: '/api/schedules/fast', headers: auth(admin), payload: { enabled: false } })
  t.same(off.json().nextRuns, [])
  const ro = await app.inject({ method: 'DELETE', url: '/api/schedules/from-config', headers: auth(admin) })
  t.equal(ro.statusCode, 409)
  t.equal(ro.json().code, 'INVALID_STATE')
})

t.test('a backup failing on a wrong password reaches the webhook, retried after a 500, with no secret in it', async t => {
  const receiver = await startReceiver([500])
  t.teardown(receiver.stop)
  const wrong = cluster.url('schedules_app').replace(encodeURIComponent(cluster.password), 'wrong-Pa55word')
  const config = { ...testConfig(cluster, 'schedules_app', { DATABASE_URL: wrong }), webhooks: [receiver.url] }
  t.teardown(config.cleanup)
  const { app } = await build(t, config, { service: 'app' })
  const operator = await tokenFor(app, 'operator')
  const res = await app.inject({ method: 'POST', url: '/api/backup/create', headers: auth(operator), payload: {} })
  t.equal(res.statusCode, 202)
  const first = await receiver.next()
  const retry = await receiver.next()
  t.equal(retry.body.event, 'backup.failed')
  t.equal(retry.body.backup.id, res.json().backup.id)
  t.equal(retry.body.backup.status, 'failed')
  t.match(retry.body.text, /backup \*.+\* of default\/schedules_app failed \(PG_AUTH_FAILED/)
  t.same(retry.body, first.body)
  t.notMatch(JSON.stringify(retry.body), /wrong-Pa55word|pgkeep-test-Secr3t/, 'no password in the alert')
})

t.test('a failed validation and runs missed while the server was down reach the webhook', async t => {
  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  const config = { ...testConfig(cluster, 'schedules_app'), webhooks: [receiver.url] }
  t.teardown(config.cleanup)
  let { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const created = await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: { name: 'hourly', cron: '0 * * * *' } })
  t.equal(created.statusCode, 201)
  const backup = await app.backupService.waitFor((await app.backupService.create({ compression: 'none' }, 'test')).id)
  t.equal(backup.status, 'completed')
  await app.close()

  // down for two hours and a half, and meanwhile the backup file got damaged
  const path = `${config.backupDir}/.pgkeep/schedules.json`
  const file = JSON.parse(readFileSync(path, 'utf8'))
  file.state.hourly.lastTickAt = hoursBeforeThisHour(2).toISOString()
  writeFileSync(path, JSON.stringify(file))
  const dump = `${config.backupDir}/${backup.name}`
  const bytes = readFileSync(dump)
  bytes[Math.floor(bytes.length / 2)] ^= 0xff
  writeFileSync(dump, bytes)

  ;({ app } = await build(t, config, { service: 'app' }))
  const missed = await receiver.next()
  t.equal(missed.body.event, 'schedule.missed')
  t.match(missed.body.text, /schedule \*hourly\* missed its run at .+: the server was not running/)
  t.match(missed.body.schedule, { name: 'hourly', reason: 'downtime', count: 2 })

  const validated = await app.inject({ method: 'POST', url: `/api/backup/${backup.id}/validate`, headers: auth(admin) })
  t.equal(validated.json().backup?.verification?.ok ?? false, false, `validate replied ${validated.statusCode}`)
  const alert = await receiver.next()
  t.equal(alert.body.event, 'validation.failed')
  t.equal(alert.body.backup.id, backup.id)
  t.match(alert.body.text, /validation of backup \*.+\* \(default\/schedules_app\) failed/)
})

t.test('every schedule change is audited with the schedule it names, refused and failed ones too', async t => {
  const config = testConfig(cluster, 'schedules_app')
  t.teardown(config.cleanup)
  const { app } = await build(t, config, { service: 'app' })
  const admin = await tokenFor(app, 'admin')
  const operator = await tokenFor(app, 'operator')
  const body = { name: 'weekly-orders', cron: '0 4 * * 0', backup: {} }
  await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: body })
  await app.inject({ method: 'POST', url: '/api/schedules', headers: auth(admin), payload: body })
  await app.inject({ method: 'PATCH', url: '/api/schedules/weekly-orders', headers: auth(operator), payload: { enabled: false } })
  await app.inject({ method: 'PATCH', url: '/api/schedules/weekly-orders', headers: auth(admin), payload: { enabled: false } })
  await app.inject({ method: 'DELETE', url: '/api/schedules/weekly-orders', headers: auth(admin) })
  await app.inject({ method: 'DELETE', url: '/api/schedules/no-such-schedule', headers: auth(admin) })

  const lines = (await auditLines(app)).filter(l => String(l.action).startsWith('schedule.'))
  t.same(lines.map(l => [l.action, l.subject, l.outcome, l.code]), [
    ['schedule.create', 'weekly-orders', 'ok', undefined],
    ['schedule.create', 'weekly-orders', 'failed', 'CONFLICT'],
    ['schedule.update', 'weekly-orders', 'denied', 'FORBIDDEN'],
    ['schedule.update', 'weekly-orders', 'ok', undefined],
    ['schedule.delete', 'weekly-orders', 'ok', undefined],
    ['schedule.delete', 'no-such-schedule', 'failed', 'NOT_FOUND'],
  ])
  for (const l of lines) t.match(l, { door: 'http', user: /^token:t-(admin|operator)$/, ip: String })
})
