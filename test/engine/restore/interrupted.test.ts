import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BackupService } from '../../../server/engine/backup-service.ts'
import { dbnameConninfo } from '../../../server/engine/pg/passfile.ts'
import { RestoreRecords, type RestoreRecord } from '../../../server/engine/store/restore-records.ts'
import { spawnCli } from '../../cli/cli-runner.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSlowRestoreDatabase, testConfig } from '../../helpers/sample-db.ts'
import { FAST_RETRY, waitUntil } from '../../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSlowRestoreDatabase(cluster, 'interrupted_slowsrc', 5000)
const config = testConfig(cluster, 'interrupted_slowsrc')
t.teardown(config.cleanup)
const env = { DATABASE_URL: cluster.url('interrupted_slowsrc'), PGKEEP_BACKUP_DIR: config.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir }

const pgkeepDatabases = async (): Promise<string[]> =>
  (await cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'interrupted%\\_\\_pgkeep\\_%' ORDER BY 1")).split('\n').filter(Boolean)
const tables = async (db: string): Promise<string> =>
  (await cluster.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", dbnameConninfo(db))).trim()
const oidOf = async (db: string): Promise<number> => Number(await cluster.psql(`SELECT oid FROM pg_database WHERE datname = '${db}'`))

/** a pid no process has: one that just ended */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid ?? 999_999

t.test('a restore whose process was killed shows INTERRUPTED after a restart, its scratch database dropped and the target untouched', async t => {
  const first = await BackupService.open(config, { retry: FAST_RETRY })
  const backup = await first.waitFor((await first.create({ format: 'custom', compression: 'zstd' }, 'test')).id)
  await first.close()
  t.equal(backup.status, 'completed')
  await cluster.createDatabase('interrupted target')
  await cluster.psql('CREATE TABLE marker (x int)', dbnameConninfo('interrupted target'))

  const cli = spawnCli(['restore', backup.id, '--database', 'interrupted target', '--clean'], env)
  const copying = async (): Promise<boolean> => Number(await cluster.psql(
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgkeep-restore-%' AND datname LIKE 'interrupted target\\_\\_pgkeep\\_restore\\_%' AND query LIKE 'COPY%'")) > 0
  await waitUntil(copying, 60_000, 'the CLI restore to be copying into its scratch database')
  cli.child.kill('SIGKILL')
  await cli.result
  const [record] = await new RestoreRecords(config.backupDir).all()
  t.match(record, { status: 'running', mode: 'replace', database: 'interrupted target', scratch: /^interrupted target__pgkeep_restore_/ })
  t.same(await pgkeepDatabases(), [record.scratch], 'the dead restore left its scratch database')

  const warnings: string[] = []
  const service = await BackupService.open(config, { retry: FAST_RETRY, logger: { info: () => {}, warn: m => warnings.push(m), error: m => warnings.push(m) } })
  t.teardown(() => service.close())
  t.match(service.restoreState(record.id), { restoreId: record.id, backupId: backup.id, database: 'interrupted target', status: 'failed', error: { code: 'INTERRUPTED' } })
  t.same(service.activeRestores(), [])
  t.same(await pgkeepDatabases(), [], 'start-up dropped the scratch database')
  t.equal(await tables('interrupted target'), 'marker', 'the database it was replacing is as it was')
  t.match(warnings.join('\n'), /restore .* into interrupted target was interrupted/)
  t.match(JSON.parse(readFileSync(join(config.backupDir, '.pgkeep', 'restores.json'), 'utf8')).restores, [{ id: record.id, status: 'failed' }])
})

t.test('a restore that died after its swap counts as completed, and start-up drops the database it replaced', async t => {
  // the state a restore leaves when killed between the rename and the drop of the old database, made by hand
  const id = '01936f6e-0000-7000-8000-00000000abcd'
  await cluster.createDatabase('interrupted swapped')
  await cluster.createDatabase('interrupted swapped__pgkeep_old_0000abcd')
  await cluster.psql('CREATE TABLE restored (x int)', dbnameConninfo('interrupted swapped'))
  const record: RestoreRecord = {
    id,
    backupId: '01936f6e-0000-7000-8000-000000000001',
    target: 'default',
    database: 'interrupted swapped',
    mode: 'replace',
    scratch: 'interrupted swapped__pgkeep_restore_0000abcd',
    scratchOid: await oidOf('interrupted swapped'),
    old: 'interrupted swapped__pgkeep_old_0000abcd',
    existingOid: await oidOf('interrupted swapped__pgkeep_old_0000abcd'),
    status: 'running',
    ownerPid: deadPid(),
    startedAt: new Date(Date.now() - 60_000).toISOString(),
  }
  await new RestoreRecords(config.backupDir).put(record)
  const service = await BackupService.open(config, { retry: FAST_RETRY })
  t.teardown(() => service.close())
  t.match(service.restoreState(id), { status: 'completed' })
  t.same(await pgkeepDatabases(), [], 'the replaced database was dropped')
  t.equal(await tables('interrupted swapped'), 'restored', 'the restored one stays')
})
