import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Compile } from 'typebox/compile'
import { Drill } from '../../schemas/drill.ts'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, createSlowRestoreDatabase, testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { setupApp } from '../http/helper.ts'
import { memoryIO, runCli, spawnCli } from './cli-runner.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_drill_shop', { rows: 300 })
await createSlowRestoreDatabase(cluster, 'cli_drill_slow', 3000)
const checkDrill = Compile(Drill)

const drillDatabases = async (): Promise<string[]> =>
  (await cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'pgkeep\\_drill\\_%' ORDER BY 1")).split('\n').filter(Boolean)

const shop = testConfig(cluster, 'cli_drill_shop')
t.teardown(shop.cleanup)
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

t.test('kill -9 mid-drill: the next start drops the scratch databases and marks the drill INTERRUPTED', async t => {
  const slow = testConfig(cluster, 'cli_drill_slow')
  t.teardown(slow.cleanup)
  const env = { DATABASE_URL: cluster.url('cli_drill_slow'), PGKEEP_BACKUP_DIR: slow.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir }
  const created = await runCli(['create', '--json'], env)
  t.equal(created.code, 0, created.stderr)
  const cli = spawnCli(['drill', '--json'], env)
  const copying = async (): Promise<boolean> => Number(await cluster.psql(
    "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'pgkeep\\_drill\\_%' AND query LIKE 'COPY%'")) > 0
  await waitUntil(copying, 60_000, 'the drill to be copying into its scratch database')
  cli.child.kill('SIGKILL')
  await cli.result
  t.not((await drillDatabases()).length, 0, 'the dead drill left its scratch database')
  const { drills } = JSON.parse(readFileSync(join(slow.backupDir, '.pgkeep', 'drills.json'), 'utf8'))
  t.match(drills, [{ status: 'running' }])

  const next = await runCli(['list'], env)
  t.equal(next.code, 0, next.stderr)
  t.match(next.stderr, /drill .* was interrupted/)
  await waitUntil(async () => (await drillDatabases()).length === 0, 15_000, 'the scratch databases to be gone')
  t.same(await drillDatabases(), [])
  const after = JSON.parse(readFileSync(join(slow.backupDir, '.pgkeep', 'drills.json'), 'utf8')).drills
  t.match(after, [{ status: 'failed', error: { code: 'INTERRUPTED' } }])
})

t.test('remote: --server drives the drill over HTTP and follows it over the WebSocket', async t => {
  const server = await setupApp(t, cluster, 'cli_drill_shop')
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const address = server.app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  await server.app.backupService.waitFor((await server.app.backupService.create({ countRows: true }, 'test')).id)
  const io = memoryIO({ PGKEEP_TOKEN: server.token.operator })
  const code = await dispatch(['drill', '--json', '--server', url], io)
  t.equal(code, 0, io.err())
  const drill = JSON.parse(io.out())
  t.match(drill, { status: 'passed', checks: [{ kind: 'restore', ok: true }, { kind: 'objects', ok: true }, { kind: 'rowCounts', ok: true, estimate: false }] })
  const viewer = memoryIO({ PGKEEP_TOKEN: server.token.viewer })
  t.equal(await dispatch(['drill', '--server', url], viewer), 1)
  t.match(viewer.err(), /FORBIDDEN/)
  t.same(await drillDatabases(), [])
})
