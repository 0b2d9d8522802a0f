import { once } from 'node:events'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { Backup, CleanupResult } from '../../schemas/backup.ts'
import type { AuditEntry } from '../../schemas/audit.ts'
import type { MissedRun } from '../../schemas/schedule.ts'
import { AuditLog } from '../../server/audit/audit-log.ts'
import { CLEANUP_CRON_ACTOR, Scheduler } from '../../server/schedules/scheduler.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { openService, waitUntil } from '../helpers/service.ts'
import { hoursBeforeThisHour } from '../helpers/schedule-time.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'


const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'sched_small', { rows: 500 })
// slow by construction, not by size: the overlap test holds a gate its dump waits at
await createSampleDatabase(cluster, 'sched_slow', { rows: 500 })

async function setup (t: Test, database: string, extra: Record<string, unknown> = {}) {
  const config = { ...testConfig(cluster, database), ...extra }
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const scheduler = await Scheduler.open(service, config)
  t.teardown(() => scheduler.close())
  return { config, service, scheduler }
}

t.test('a seconds-level schedule fires, tags its backups, and applies its retention after a success', async t => {
  const { service, scheduler } = await setup(t, 'sched_small')
  await scheduler.start()
  const created = await scheduler.create({
    name: 'every-2s', cron: '*/2 * * * * *', backup: { compression: 'none' }, retention: { keepLast: 1 },
  }, 'alice')
  t.equal(created.source, 'api')
  t.equal(created.nextRuns.length, 5)
  const times = created.nextRuns.map(Date.parse)
  t.ok(times[0] > Date.now() - 1000 && times.every((x, i) => i === 0 || x - times[i - 1] === 2000), 'next runs are 2 s apart')

  const finished: { backup: Backup, retention?: CleanupResult }[] = []
  scheduler.on('finished', e => finished.push(e))
  await waitUntil(() => finished.length >= 2, 20_000, 'two scheduled runs')
  await scheduler.update('every-2s', { enabled: false })
  const [first, second] = finished
  t.equal(first.backup.status, 'completed')
  t.equal(first.backup.scheduleId, 'every-2s')
  t.equal(first.backup.createdBy, 'schedule:every-2s')
  t.same(second.retention?.deleted.map(b => b.id), [first.backup.id], 'keepLast 1 removed the older run')
  t.throws(() => service.get(first.backup.id), { code: 'NOT_FOUND' })
  const view = scheduler.get('every-2s')
  t.equal(view.lastBackupId !== undefined, true)
  t.same(view.nextRuns, [], 'a disabled schedule has no next runs')
})

t.test('a slow run blocks the next ticks, which are reported as missed (overlap), and runs resume after it', async t => {
  const { service, scheduler } = await setup(t, 'sched_slow')
  // the first run's dump waits at this gate until the test has seen a tick skipped
  const gate = await holdDumpGate(cluster, 'sched_slow')
  t.teardown(gate.release)
  await scheduler.start()
  const missed: MissedRun[] = []
  const fired: Backup[] = []
  scheduler.on('missed', e => missed.push(e.missed))
  scheduler.on('fired', e => fired.push(e.backup))
  await scheduler.create({ name: 'every-1s', cron: '* * * * * *', backup: { format: 'plain', compression: 'gzip' } }, 'alice')
  await waitUntil(() => fired.length >= 1, 10_000, 'first run')
  await waitUntil(() => missed.length >= 1, 10_000, 'a tick skipped for overlap')
  t.equal(missed[0].reason, 'overlap')
  t.notOk(['completed', 'failed', 'cancelled'].includes(service.get(fired[0].id).status), 'the skipped tick came while the first run was still going')
  t.equal(fired.length, 1, 'no second backup started while the first ran')
  await gate.release()
  const done = await service.waitFor(fired[0].id)
  t.equal(done.status, 'completed')
  await waitUntil(() => fired.length >= 2, 10_000, 'the next run after the slow one ended')
  await scheduler.update('every-1s', { enabled: false })
  await service.cancel(fired[1].id).catch(() => {})
  t.ok(Date.parse(fired[1].createdAt) >= Date.parse(done.finishedAt!) - 1000, 'the second run started only after the first finished')
  t.ok(scheduler.get('every-1s').missed.length >= 1, 'the miss is kept in the schedule view')
})

t.test('a tick another instance took is not reported missed by this one, though its own last run still goes on', async t => {
  const config = { ...testConfig(cluster, 'sched_slow') }
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const gate = await holdDumpGate(cluster, 'sched_slow')
  t.teardown(gate.release)
  // this instance takes only the first tick; every later one went to another instance (a shared catalog's claim)
  let claimed = 0
  const scheduler = await Scheduler.open(service, config, { claimTick: async () => claimed++ === 0 })
  t.teardown(() => scheduler.close())
  await scheduler.start()
  const missed: MissedRun[] = []
  scheduler.on('missed', e => missed.push(e.missed))
  await scheduler.create({ name: 'every-1s', cron: '* * * * * *', backup: { format: 'plain', compression: 'gzip' } }, 'alice')
  await waitUntil(() => claimed >= 4, 15_000, 'three more ticks while the first run waits at the gate')
  await scheduler.update('every-1s', { enabled: false })
  t.same(missed, [], 'the others\' ticks are theirs to run or report')
  // the first run ends before the scheduler closes (close waits for it)
  await gate.release()
})

t.test('API schedules persist 0600, survive a restart, and runs missed while down are reported once', async t => {
  const { config, service, scheduler } = await setup(t, 'sched_small')
  await scheduler.start()
  await scheduler.create({ name: 'hourly', cron: '0 0 * * * *', timezone: 'Europe/Paris', backup: { format: 'custom' } }, 'alice')
  await scheduler.close()
  const path = `${config.backupDir}/.pgkeep/schedules.json`
  t.equal(statSync(path).mode & 0o777, 0o600)
  // as if the server had been down for three hours and a half since the schedule last ticked
  const file = JSON.parse(readFileSync(path, 'utf8'))
  file.state.hourly.lastTickAt = hoursBeforeThisHour(3).toISOString()
  writeFileSync(path, JSON.stringify(file))

  const again = await Scheduler.open(service, config)
  t.teardown(() => again.close())
  const missed = once(again, 'missed')
  await again.start()
  const [{ schedule, missed: m }] = await missed
  t.equal(schedule, 'hourly')
  t.equal(m.reason, 'downtime')
  t.equal(m.count, 3)
  t.equal(new Date(m.scheduledAt).getUTCMinutes(), 0)
  const view = again.get('hourly')
  t.equal(view.timezone, 'Europe/Paris')
  t.equal(view.createdBy, 'alice')
  t.equal(view.missed[0].count, 3)
  t.ok(Date.parse(view.nextRuns[0]) > Date.now())

  // the report is not repeated by the next restart
  await again.close()
  const third = await Scheduler.open(service, config)
  t.teardown(() => third.close())
  let repeated = false
  third.on('missed', () => { repeated = true })
  await third.start()
  t.notOk(repeated)
})

t.test('config schedules are listed read-only; bad cron, zone and duplicate names are refused', async t => {
  const { scheduler } = await setup(t, 'sched_small', {
    schedules: [{ name: 'nightly', cron: '30 2 * * *', backup: { compression: 'gzip' }, retention: { keepDaily: 7 } }],
    cleanupCron: '0 3 * * *',
  })
  const unusable = once(scheduler, 'cleanup-error')
  await scheduler.start()
  t.match((await unusable)[0].error, { code: 'CONFIG_INVALID', message: /no retention policy/ }, 'a cleanup cron without a policy is reported, not silently idle')
  const nightly = scheduler.get('nightly')
  t.equal(nightly.source, 'config')
  t.match(nightly.nextRuns[0], /T\d\d:30:00\.000Z$/)
  await t.rejects(scheduler.update('nightly', { enabled: false }), { code: 'INVALID_STATE' })
  await t.rejects(scheduler.remove('nightly'), { code: 'INVALID_STATE' })
  await t.rejects(scheduler.create({ name: 'nightly', cron: '* * * * *' }, 'a'), { code: 'CONFLICT' })
  await t.rejects(scheduler.create({ name: 'bad', cron: '61 * * * *' }, 'a'), { code: 'INVALID_INPUT' })
  await t.rejects(scheduler.create({ name: 'bad', cron: '* * * * *', timezone: 'Mars/Olympus' }, 'a'), { code: 'INVALID_INPUT' })
  t.throws(() => scheduler.get('nope'), { code: 'NOT_FOUND' })
  t.same(scheduler.list().map(s => s.name), ['nightly'], 'nothing was stored by the refused calls')
})

t.test('a schedule that names a target no longer configured stops the start with one line, not every run', async t => {
  const { config, service, scheduler } = await setup(t, 'sched_small')
  const reports = { ...config.targets.default, name: 'reports' }
  const withReports = { ...config, targets: { ...config.targets, reports } }
  const before = await Scheduler.open(service, withReports)
  await before.create({ name: 'weekly-reports', cron: '0 4 * * 0', backup: { target: 'reports' } }, 'alice')
  await before.close()
  await scheduler.close()
  // the target is gone from the configuration while the stored schedule still names it
  await t.rejects(Scheduler.open(service, config), {
    code: 'CONFIG_INVALID',
    message: /^schedule "weekly-reports" in \S+schedules\.json: backup\.target: unknown target "reports"; configured: default; fix the configuration or remove the schedule from that file$/,
  })
  await t.rejects(Scheduler.open(service, { ...config, schedules: [{ name: 'n', cron: '0 2 * * *', timezone: 'Europe/Pariss' }] }), {
    code: 'CONFIG_INVALID', message: 'invalid configuration: schedules[0].timezone: unknown time zone "Europe/Pariss"',
  })
})

t.test('the retention cleanup runs on its own cron', async t => {
  const { service, scheduler } = await setup(t, 'sched_small', { cleanupCron: '* * * * * *', retention: { keepLast: 1 } })
  const a = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  const b = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.equal(b.status, 'completed')
  const cleaned = once(scheduler, 'cleanup')
  await scheduler.start()
  const [{ result }] = await cleaned
  t.same(result.deleted.map((x: Backup) => x.id), [a.id])
})

t.test('scheduled backups and cleanups are audited as the schedule, door schedule, naming what they deleted and why', async t => {
  const config = { ...testConfig(cluster, 'sched_small'), cleanupCron: '* * * * * *', retention: { keepLast: 1 } }
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const auditLog = new AuditLog(config.backupDir)
  t.teardown(() => auditLog.close())
  const lines = async (): Promise<AuditEntry[]> => (await auditLog.page(1, 500)).items.reverse()

  // the retention cron first (stopped once it has run, so it does not do the schedule's retention below)
  const a = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  const withCron = await Scheduler.open(service, config, { audit: auditLog })
  const cleaned = once(withCron, 'cleanup')
  await withCron.start()
  await cleaned
  await withCron.close()
  const cron = (await lines()).filter(l => l.user === CLEANUP_CRON_ACTOR)
  t.equal(cron.length, 1, 'one entry for the cron cleanup that deleted something')
  t.match(cron[0], { action: 'backup.cleanup', door: 'schedule', ip: 'local', outcome: 'ok' })
  t.same(cron[0].deleted?.map(d => d.id), [a.id])
  t.match(cron[0].deleted?.[0].reason, /^full backup #2 of target .*kept by none of keepLast 1$/)

  // then a schedule with its own retention
  const scheduler = await Scheduler.open(service, { ...config, cleanupCron: undefined }, { audit: auditLog })
  t.teardown(() => scheduler.close())
  await scheduler.start()
  const finished: { backup: Backup }[] = []
  scheduler.on('finished', e => finished.push(e))
  await scheduler.create({ name: 'every-2s', cron: '*/2 * * * * *', backup: { compression: 'none' }, retention: { keepLast: 1 } }, 'alice')
  await waitUntil(() => finished.length >= 2, 20_000, 'two scheduled runs')
  await scheduler.update('every-2s', { enabled: false })
  const mine = (await lines()).filter(l => l.user === 'schedule:every-2s')
  const creates = mine.filter(l => l.action === 'backup.create')
  t.ok(creates.length >= 2)
  for (const l of creates) t.match(l, { door: 'schedule', ip: 'local', outcome: 'ok', backupId: String })
  t.same(creates.slice(0, 2).map(l => l.backupId), finished.slice(0, 2).map(f => f.backup.id), 'each run names its backup')
  const deletions = mine.filter(l => l.action === 'backup.cleanup').flatMap(l => l.deleted ?? [])
  t.ok(deletions.some(d => d.id === finished[0].backup.id && /kept by none of keepLast 1$/.test(d.reason)), 'the run\'s retention names the older run it deleted')
})
