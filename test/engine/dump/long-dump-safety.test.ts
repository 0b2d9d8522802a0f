import { readdirSync } from 'node:fs'
import pg from 'pg'
import t, { type Test } from 'tap'
import { loadConfig } from '../../../server/config.ts'
import { buildPgDumpArgs } from '../../../server/engine/dump/pg-dump-process.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { testConfig } from '../../helpers/sample-db.ts'
import { backendsOf, FAST_RETRY, openService } from '../../helpers/service.ts'
import { BackupService } from '../../../server/engine/backup-service.ts'
import { silentLogger } from '../../../server/engine/backup-events.ts'
import { Notifier } from '../../../server/alerts/notifier.ts'
import { startReceiver } from '../../alerts/webhook-receiver.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'
import { applicationName } from '../../../server/engine/dump/dump-job.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const DB = 'lock_timeout_shop'
await cluster.createDatabase(DB)
await cluster.psql('CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 1000) g; CREATE TABLE "Odd Name" (k int)', DB)

/** Another session holding ACCESS EXCLUSIVE on `table` (a long migration, say) until the test ends. */
async function holdLock (t: Test, table: string): Promise<number> {
  const holder = new pg.Client({ host: cluster.socketDir, port: cluster.port, user: 'postgres', database: DB, application_name: 'slow-migration' })
  await holder.connect()
  t.teardown(async () => { await holder.query('ROLLBACK').catch(() => {}); await holder.end() })
  await holder.query('BEGIN')
  await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
  return (holder as unknown as { processID: number }).processID
}

async function serviceWithLockWait (t: Test, seconds: number) {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService({ ...config, targets: { default: { ...config.targets.default, lockWaitTimeoutSeconds: seconds } } })
  t.teardown(() => service.close({ cancelRunning: true }))
  return { service, config }
}

t.test('every dump gets --lock-wait-timeout, 60 s unless the target says otherwise (0: wait forever)', async t => {
  t.equal(loadConfig({ DATABASE_URL: cluster.url(DB) }).targets.default.lockWaitTimeoutSeconds, 60)
  const plan = { format: 'custom' as const, compression: 'zstd' as const, level: 3, options: { schemas: [], excludeTables: [], schemaOnly: false, dataOnly: false, noOwner: false, noPrivileges: false, jobs: 1 }, pgDumpMajor: 15 }
  t.ok(buildPgDumpArgs({ ...plan, lockWaitTimeoutSeconds: 60 }, []).includes('--lock-wait-timeout=60s'))
  t.notOk(buildPgDumpArgs({ ...plan, lockWaitTimeoutSeconds: 0 }, []).some(a => a.startsWith('--lock-wait-timeout')))
})

t.test('a table held by a migration: the dump fails fast with LOCK_TIMEOUT naming the backend and its query, nothing written', async t => {
  const pid = await holdLock(t, 'orders')
  const { service, config } = await serviceWithLockWait(t, 1)
  const done = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(done.status, 'failed')
  t.equal(done.error?.code, 'LOCK_TIMEOUT')
  t.match(done.error?.message, new RegExp(`waited 1 s for a table lock.*backend ${pid} \\(postgres, slow-migration\\) holds an ACCESS EXCLUSIVE lock in a transaction open for \\d+ s: LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`))
  t.same(readdirSync(config.backupDir).filter(n => n.startsWith('default-')), [], 'no data, partial or manifest')
})

t.test('pg_dump itself waiting for a lock (a schema-only dump measures no table) fails the same way, naming the table', async t => {
  const pid = await holdLock(t, '"Odd Name"')
  const { service } = await serviceWithLockWait(t, 1)
  const done = await service.waitFor((await service.create({ schemaOnly: true }, 'test')).id)
  t.equal(done.error?.code, 'LOCK_TIMEOUT')
  t.match(done.error?.message, new RegExp(`pg_dump could not lock public\\."Odd Name" within its lock wait timeout.*backend ${pid} \\(postgres, slow-migration\\) holds an ACCESS EXCLUSIVE lock`))
})

t.test('a quoted password in the blocker\'s query is not repeated', async t => {
  const holder = new pg.Client({ host: cluster.socketDir, port: cluster.port, user: 'postgres', database: DB })
  await holder.connect()
  t.teardown(async () => { await holder.query('ROLLBACK').catch(() => {}); await holder.end() })
  await holder.query('BEGIN')
  await holder.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE')
  // the blocker's last statement is what pg_stat_activity shows
  await holder.query("CREATE ROLE lock_timeout_app; ALTER ROLE lock_timeout_app PASSWORD 'Hunter2-secret'")
  const { service } = await serviceWithLockWait(t, 1)
  const done = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(done.error?.code, 'LOCK_TIMEOUT')
  t.match(done.error?.message, /ALTER ROLE lock_timeout_app PASSWORD '\*\*\*'/)
  t.notMatch(done.error?.message, /Hunter2-secret/)
})

t.test('a dump running past the target\'s maxDurationMinutes is stopped cleanly and fails with TIMEOUT', async t => {
  const gate = await holdDumpGate(cluster, DB)
  t.teardown(gate.release)
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  // 0.02 minutes: the gate keeps the dump waiting well past it, by construction
  const service = await openService({ ...config, targets: { default: { ...config.targets.default, maxDurationMinutes: 0.02 } } })
  t.teardown(() => service.close({ cancelRunning: true }))
  const done = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(done.status, 'failed')
  t.match(done.error, { code: 'TIMEOUT', message: /ran longer than the target's maxDurationMinutes \(0\.02\) and was stopped/ })
  t.same(readdirSync(config.backupDir).filter(n => n.startsWith('default-')), [], 'no partial left')
  t.equal(await backendsOf(cluster, applicationName(done.id)), 0, 'its server backend is gone')
  t.equal(loadConfig({ DATABASE_URL: cluster.url(DB) }).targets.default.maxDurationMinutes, undefined, 'no limit unless configured')
})

t.test('a dump whose snapshot holds vacuum back past xminWarningMinutes warns once (event, log, webhook) and goes on', async t => {
  const gate = await holdDumpGate(cluster, DB)
  t.teardown(gate.release)
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const warned: string[] = []
  // 0.005 minutes: the gate keeps the dump's snapshot open well past it, by construction
  const service = await BackupService.open({ ...config, targets: { default: { ...config.targets.default, xminWarningMinutes: 0.005 } } },
    { retry: FAST_RETRY, logger: { ...silentLogger, warn: (m: string) => warned.push(m) } })
  t.teardown(() => service.close({ cancelRunning: true }))
  const receiver = await startReceiver()
  t.teardown(receiver.stop)
  const notifier = new Notifier([{ name: 'hook', type: 'webhook', url: receiver.url, headers: {}, events: ['backup.warning'], timeoutMs: 10_000 }])
  t.teardown(() => notifier.close())
  t.teardown(notifier.attach(service))

  const events: Array<{ backupId: string, code: string, message: string }> = []
  service.on('warning', w => events.push(w))
  const queued = await service.create({}, 'test')
  const hook = await receiver.next()
  t.match(hook.body, { event: 'backup.warning', warning: { backupId: queued.id, code: 'XMIN_HELD' }, text: new RegExp(`${queued.name}.*held back the xmin horizon`) })
  await gate.release()
  const done = await service.waitFor(queued.id)
  t.equal(done.status, 'completed', 'a warning never stops the dump')
  t.equal(events.length, 1, 'warned once')
  t.match(events[0], { backupId: queued.id, code: 'XMIN_HELD', message: /snapshot has held back the xmin horizon of database "lock_timeout_shop" for \d+ s: VACUUM cannot remove rows/ })
  t.ok(warned.some(m => m.includes('held back the xmin horizon')), 'and logged')
})

t.test('verify: after runs the full validation as the job\'s last step; scheduled backups default to inline', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const statuses: string[] = []
  service.on('status', b => statuses.push(b.status))
  const verified = await service.waitFor((await service.create({ verify: 'after' }, 'test')).id)
  t.equal(verified.status, 'completed')
  t.match(verified.verification, { ok: true, method: 'sha256+pg_restore' }, 'completed with its verification')
  t.same(statuses.filter((s, i) => s !== statuses[i - 1]), ['running', 'verifying', 'completed'])
  t.equal(verified.options.verify, 'after')

  const byHand = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(byHand.options.verify, 'off')
  t.equal(byHand.verification, undefined, 'by hand and not asked: not verified')
  const scheduled = await service.waitFor((await service.create({}, 'test', { scheduleId: 'nightly' })).id)
  t.equal(scheduled.options.verify, 'inline', 'a scheduled backup defaults to inline (docs/verification.md: the cheaper check)')
  t.match(scheduled.verification, { ok: true, method: 'inline:pg_restore' })
  await t.rejects(service.create({ verify: 'sometimes' }, 'test'), { code: 'INVALID_INPUT' })
})
