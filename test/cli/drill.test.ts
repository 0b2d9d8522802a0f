import { join } from 'node:path'
import t from 'tap'
import { Compile } from 'typebox/compile'
import { Drill } from '../../schemas/drill.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { runCli } from './cli-runner.ts'
import { leftDrillDatabases } from '../helpers/drill-databases.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_drill_shop', { rows: 300 })
const checkDrill = Compile(Drill)


const shop = testConfig(cluster, 'cli_drill_shop')
t.teardown(shop.cleanup)
const drillDatabases = async (): Promise<string[]> => await leftDrillDatabases(cluster, shop.backupDir)
const shopEnv = { DATABASE_URL: cluster.url('cli_drill_shop'), PGKEEP_BACKUP_DIR: shop.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir }

t.test('pgkeep drill --target T --json restores the newest backup, prints every check with its outcome and the restore time, and leaves no scratch database', async t => {
  const older = await runCli(['create', '--json', '--format', 'tar'], shopEnv)
  t.equal(older.code, 0, older.stderr)
  const created = await runCli(['create', '--json', '--count-rows'], shopEnv)
  t.equal(created.code, 0, created.stderr)
  const newest = JSON.parse(created.stdout)
  const r = await runCli(['drill', '--target', 'default', '--json'], shopEnv)
  t.equal(r.code, 0, r.stderr)
  const drill = JSON.parse(r.stdout)
  t.ok(checkDrill.Check(drill), 'matches the Drill schema')
  t.equal(drill.backupId, newest.id, 'the newest completed backup')
  t.equal(drill.status, 'passed')
  t.ok(drill.restoreMs > 0, 'the restore time')
  t.same(drill.checks.map((c: { kind: string, ok: boolean }) => [c.kind, c.ok]), [['restore', true], ['objects', true], ['rowCounts', true]])
  t.same(await drillDatabases(), [])

  const human = await runCli(['drill', newest.id], shopEnv)
  t.equal(human.code, 0, human.stderr)
  t.match(human.stdout, /: PASSED in .*restore/)
  t.match(human.stdout, /^ {2}ok {3}rowCounts +all \d+ tables have exactly the rows counted/m)
  const info = await runCli(['info', newest.id], shopEnv)
  t.match(info.stdout, /^Drill: +restore proven at /m)
  const list = await runCli(['list'], shopEnv)
  t.match(list.stdout, /restore proven/)
})

t.test('a backup that cannot be drilled is a usage error (exit 2) with one line', async t => {
  const unknown = await runCli(['drill', '01936f6e-0000-7000-8000-000000000000'], shopEnv)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^pgkeep: backup 01936f6e-0000-7000-8000-000000000000 .*not found/i)
  const both = await runCli(['drill', '01936f6e-0000-7000-8000-000000000000', '--target', 'default'], shopEnv)
  t.equal(both.code, 2)
  const failed = await runCli(['create', '--json', '--schema', 'no_such_schema'], shopEnv)
  const notCompleted = await runCli(['drill', JSON.parse(failed.stdout).id], shopEnv)
  t.equal(notCompleted.code, 2)
  t.match(notCompleted.stderr, /only completed backups can be drilled/)
})

t.test('a failing assertion: exit 3 and the check named', async t => {
  const { writeFileSync } = await import('node:fs')
  const file = join(shop.backupDir, 'drill-config.json')
  writeFileSync(file, JSON.stringify({ drill: { assertions: [{ name: 'no orders', sql: 'SELECT count(*) = 0 FROM public.orders' }] } }))
  const r = await runCli(['drill'], { ...shopEnv, PGKEEP_CONFIG: file })
  t.equal(r.code, 3)
  t.match(r.stderr, /FAILED/)
  t.match(r.stderr, /FAIL +no orders +returned false, expected true/)
  writeFileSync(file, JSON.stringify({ drill: { assertions: [{ name: 'x' }] } }))
  const bad = await runCli(['drill'], { ...shopEnv, PGKEEP_CONFIG: file })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /drill\.assertions/)
})
