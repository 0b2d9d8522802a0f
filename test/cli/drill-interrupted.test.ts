import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, createSlowRestoreDatabase, testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { setupApp } from '../http/helper.ts'
import { memoryIO, runCli, spawnCli } from './cli-runner.ts'
import { drillCopying, leftDrillDatabases } from '../helpers/drill-databases.ts'

// apart from drill.test.ts: each file stays well inside tap's per-file timeout on a busy machine
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_drill_remote', { rows: 300 })
await createSlowRestoreDatabase(cluster, 'cli_drill_slow', 3000)


t.test('kill -9 mid-drill: the next start drops the scratch databases and marks the drill INTERRUPTED', async t => {
  const slow = testConfig(cluster, 'cli_drill_slow')
  t.teardown(slow.cleanup)
  const env = { DATABASE_URL: cluster.url('cli_drill_slow'), PGKEEP_BACKUP_DIR: slow.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir }
  const created = await runCli(['create', '--json'], env)
  t.equal(created.code, 0, created.stderr)
  const drillDatabases = async (): Promise<string[]> => await leftDrillDatabases(cluster, slow.backupDir)
  const cli = spawnCli(['drill', '--json'], env)
  const records = (): Array<{ database: string, status: string }> => {
    try { return JSON.parse(readFileSync(join(slow.backupDir, '.pgkeep', 'drills.json'), 'utf8')).drills } catch { return [] }
  }
  await waitUntil(() => records().length > 0, 60_000, 'the drill to be recorded')
  await waitUntil(async () => await drillCopying(cluster, records()[0].database), 60_000, 'the drill to be copying into its scratch database')
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
  const server = await setupApp(t, cluster, 'cli_drill_remote')
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
  t.same(await leftDrillDatabases(cluster, server.config.backupDir), [])
})
