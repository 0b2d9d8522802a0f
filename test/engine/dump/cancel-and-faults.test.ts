import { spawn, execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { BackupService } from '../../../server/engine/backup-service.ts'
import { applicationName } from '../../../server/engine/dump/dump-job.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { backendsOf, openService, waitUntil } from '../../helpers/service.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'

// ~40 MB of poorly compressible text: at zstd -19 the dump takes several seconds, long enough to interrupt
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'faults_big', { rows: 200_000, padding: 160 })

const partials = (dir: string): string[] => readdirSync(dir).filter(f => f.endsWith('.partial'))

t.test('cancelling a running dump stops pg_dump and its server backend and removes the partial file', async t => {
  const config = testConfig(cluster, 'faults_big')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  // pg_dump waits at the gate with its server backend open, so the cancel finds both, however fast the machine
  const gate = await holdDumpGate(cluster, 'faults_big')
  t.teardown(gate.release)
  const b = await service.create({ compression: 'zstd', level: 19 }, 'test')
  await waitUntil(async () => partials(config.backupDir).length === 1 && await backendsOf(cluster, applicationName(b.id)) > 0, 20_000, 'pg_dump to start')
  t.equal(partials(config.backupDir).length, 1, 'a partial file is being written')
  await t.rejects(service.delete(b.id), { code: 'INVALID_STATE' }, 'a running backup cannot be deleted')
  const final = await service.cancel(b.id)
  t.equal(final.status, 'cancelled')
  t.equal(final.error?.code, 'CANCELLED')
  t.same(partials(config.backupDir), [], 'partial removed')
  t.notOk(existsSync(join(config.backupDir, b.name)), 'no final file')
  await waitUntil(async () => await backendsOf(cluster, applicationName(b.id)) === 0, 10000, 'the backend to go')
  t.pass('no server backend left for the job')
  t.same(service.active(), [], 'no active jobs')
})

t.test('cancelling a dump whose size query waits on a table lock stops that query at once and ends cancelled', async t => {
  const config = testConfig(cluster, 'faults_big')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  // pg_table_size() waits for a lock an open ALTER-style transaction holds: the job is still inspecting
  const locker = new pg.Client({ connectionString: cluster.url('faults_big') })
  await locker.connect()
  t.teardown(async () => { await locker.query('ROLLBACK').catch(() => {}); await locker.end() })
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE')
  const inspectorWaiting = async (): Promise<boolean> => Number((await cluster.psql(
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-inspector' AND datname = 'faults_big' AND wait_event_type = 'Lock'")).trim()) > 0
  const b = await service.create({ compression: 'none' }, 'test')
  await waitUntil(inspectorWaiting, 20_000, 'the size query to wait on the lock')
  // before: the query sat out its 60 s statement_timeout, and the backup ended failed, not cancelled
  const final = await service.cancel(b.id)
  t.equal(final.status, 'cancelled')
  t.equal(final.error?.code, 'CANCELLED')
  t.notOk(await inspectorWaiting(), 'no size query left waiting on the lock')
  t.same(partials(config.backupDir), [], 'nothing was written')
})

t.test('a pgkeep process killed with -9 mid-dump leaves a backup marked INTERRUPTED at the next start, partial removed', async t => {
  const config = testConfig(cluster, 'faults_big')
  t.teardown(config.cleanup)
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../helpers/run-backup-child.ts')], {
    env: { PATH: process.env.PATH, DATABASE_URL: cluster.url('faults_big'), PGKEEP_BACKUP_DIR: config.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]) })
    child.on('exit', () => reject(new Error(`child exited early: ${out}`)))
  })
  const [, id] = line.split(' ')
  child.kill('SIGKILL')
  await new Promise(resolve => child.once('exit', resolve))
  t.equal(partials(config.backupDir).length, 1, 'the crash left a partial file')

  const service = await BackupService.open(config)
  t.teardown(() => service.close())
  const b = service.get(id)
  t.equal(b.status, 'failed')
  t.equal(b.error?.code, 'INTERRUPTED')
  t.same(partials(config.backupDir), [], 'partial removed at start-up')
  t.equal(service.list({ status: 'completed' }).total, 0, 'nothing listed as restorable')
})

t.test('pg_dump dying with a non-zero exit after writing a lot fails the backup and keeps nothing', async t => {
  const fakeBin = mkdtempSync(join(tmpdir(), 'pgkeep-fake-bin-'))
  t.teardown(() => rmSync(fakeBin, { recursive: true, force: true }))
  const calls = join(fakeBin, 'calls')
  writeFileSync(join(fakeBin, 'pg_dump'), `#!/bin/sh
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 15.99"; exit 0; fi
echo run >> ${calls}
head -c 20000000 /dev/urandom
echo "pg_dump: error: Dumping the contents of table \\"orders\\" failed: PQgetResult() failed." >&2
echo "pg_dump: error: Error message from server: server closed the connection unexpectedly" >&2
exit 1
`)
  chmodSync(join(fakeBin, 'pg_dump'), 0o755)
  const config = testConfig(cluster, 'faults_big', { PGKEEP_PG_BIN_DIR: fakeBin })
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  let maxBytes = 0
  service.on('progress', p => { maxBytes = Math.max(maxBytes, p.bytes) })
  const b = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.equal(b.status, 'failed')
  t.equal(b.error?.code, 'PG_DUMP_FAILED')
  t.match(b.error?.message, /server closed the connection|PQgetResult/)
  t.ok(maxBytes > 1_000_000, `bytes flowed before the failure (${maxBytes})`)
  t.same(readdirSync(config.backupDir).filter(f => f !== 'registry.json' && !f.startsWith('.')), [], 'no file, partial or manifest left')
  t.equal(service.list({ status: 'completed' }).total, 0)
  t.equal(readFileSync(calls, 'utf8'), 'run\n', 'a connection lost after bytes were written is not retried')
})

/** A 3 MB tmpfs gives a real ENOSPC mid-write; mounting needs root, which the harness has. */
function mountSmallTmpfs (): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir], { stdio: 'ignore' })
    return dir
  } catch {
    rmSync(dir, { recursive: true, force: true })
    return undefined
  }
}
const tmpfs = mountSmallTmpfs()
if (tmpfs) t.teardown(() => { try { execFileSync('umount', [tmpfs]) } catch {} rmSync(tmpfs, { recursive: true, force: true }) })

t.test('a full disk mid-write fails the backup with DISK_FULL, removes the partial and does not retry',
  { skip: tmpfs ? false : 'mounting a small tmpfs needs root' }, async t => {
    const config = testConfig(cluster, 'faults_big', { PGKEEP_BACKUP_DIR: join(tmpfs as string, 'backups') })
    mkdirSync(config.backupDir)
    const service = await openService(config)
    t.teardown(() => service.close())
    let runs = 0
    service.on('status', b => { if (b.status === 'running') runs++ })
    const b = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
    t.equal(b.status, 'failed')
    t.equal(b.error?.code, 'DISK_FULL')
    t.equal(runs, 1, 'ran once: a full disk is not retried')
    t.same(partials(config.backupDir), [], 'partial removed, space given back')
  })
