import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { applicationName } from '../../server/engine/dump/dump-job.ts'
import { passfileRoot } from '../../server/engine/pg/passfile.ts'
import { processStartTicks } from '../../server/engine/store/file-lock.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { backendsOf, waitUntil } from '../helpers/service.ts'
import { runCli, spawnCli } from './cli-runner.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const DB = 'cli_kill9'
await cluster.createDatabase(DB)
await cluster.psql('create table orders as select g as id, md5(g::text) as note from generate_series(1, 5000) g; create sequence order_numbers;', DB)

/** Running (not zombie) processes whose command line mentions `needle`. */
function processesMentioning (needle: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (cmdline.includes(needle) && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) pids.push(Number(entry))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

const registryOf = (dir: string): Backup[] => (JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as { backups: Backup[] }).backups

t.test('kill -9 of `pgkeep create --format directory` mid-dump: pg_dump dies with it; the next start removes its passfile and stops its backend', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-kill9-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // DATABASE_URL carries the password: this is a password target, so the job writes a passfile
  const env = { DATABASE_URL: cluster.url(DB), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir }

  // Slow by construction: pg_dump reads every sequence's value, and waits for this lock to do so.
  const locker = new pg.Client({ host: cluster.socketDir, port: cluster.port, user: 'postgres', database: DB })
  await locker.connect()
  t.teardown(() => locker.end())
  // LOCK TABLE refuses sequences; a rename takes the same ACCESS EXCLUSIVE lock, rolled back at the end
  await locker.query('BEGIN; ALTER SEQUENCE order_numbers RENAME TO order_numbers_held')

  const cli = spawnCli(['create', '--format', 'directory', '--compression', 'gzip', '--jobs', '2'], env)
  let backup: Backup | undefined
  await waitUntil(async () => {
    backup = existsSync(join(dir, 'registry.json')) ? registryOf(dir).find(b => b.status === 'running') : undefined
    if (!backup) return false
    const waiting = await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${applicationName(backup.id)}' AND wait_event_type = 'Lock'`)
    return Number(waiting.trim()) > 0
  }, 30000, 'pg_dump to wait on the lock')
  const appName = applicationName(backup!.id)
  const pgDumps = processesMentioning(`${backup!.name}.partial`)
  t.ok(pgDumps.length > 0, 'pg_dump is running')
  const runDir = passfileRoot(dir)
  const crashedPassfiles = readdirSync(runDir)
  t.equal(crashedPassfiles.length, 1, 'the job has its passfile')

  cli.child.kill('SIGKILL')
  await cli.result
  const reapedAt = Date.now()
  await waitUntil(() => processesMentioning(`${backup!.name}.partial`).length === 0, 15000, 'pg_dump to die with the CLI')
  t.pass('no pg_dump outlives the killed CLI')
  t.comment(`pg_dump gone ${Date.now() - reapedAt} ms after the CLI was reaped`)
  t.equal(await backendsOf(cluster, appName), 1, 'its backend, blocked on the lock, has not noticed yet')

  // a passfile of a live owner (another pgkeep process sharing the dir) must survive the next start
  const other = spawn('sleep', ['600'], { stdio: 'ignore' })
  t.teardown(() => { other.kill('SIGKILL') })
  const liveOwner = `${other.pid}-${processStartTicks(other.pid as number)}-live01`
  mkdirSync(join(runDir, liveOwner), { mode: 0o700 })
  writeFileSync(join(runDir, liveOwner, 'pgpass'), '*:*:*:postgres:x\n', { mode: 0o600 })

  const next = await runCli(['list', '--json'], env)
  t.equal(next.code, 0, next.stderr)
  t.same(readdirSync(runDir), [liveOwner], 'the dead job\'s passfile is gone, the live owner\'s is kept')
  const after = registryOf(dir).find(b => b.id === backup!.id)
  t.equal(after?.status, 'failed')
  t.equal(after?.error?.code, 'INTERRUPTED')
  t.equal(await backendsOf(cluster, appName), 0, 'the orphaned backend was stopped at start-up, though the lock is still held')
  t.same(readdirSync(dir).filter(n => n.endsWith('.partial')), [], 'the partial directory is gone')
  await locker.query('ROLLBACK')
})
