import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Backup, Progress } from '../../schemas/backup.ts'
import type { Config } from '../../server/config.ts'
import { BackupService } from '../../server/engine/backup-service.ts'
import type { WorkerMode } from '../../server/engine/shared-jobs.ts'
import { dispatch } from '../../server/cli/main.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { FAST_RETRY, waitUntil } from '../helpers/service.ts'
import { memoryIO } from '../cli/cli-runner.ts'
import { emptyCatalog } from './catalog-helpers.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const APP = 'shared_queue_app'
const CATALOG = 'shared_queue_catalog'
await createSampleDatabase(cluster, APP, { rows: 2000 })
await emptyCatalog(cluster, CATALOG)

const env = { PGKEEP_CATALOG_URL: cluster.url(CATALOG), PGKEEP_LEASE_SECONDS: '3' }

async function open (config: Config, worker: WorkerMode): Promise<BackupService> {
  return await BackupService.open(config, { retry: FAST_RETRY, worker })
}

/** Each test gets its own backups dir and a catalog with no jobs or backups in it. */
async function setUp (t: Test): Promise<Config> {
  await cluster.psql('TRUNCATE pgkeep.jobs, pgkeep.backups', CATALOG)
  const config = testConfig(cluster, APP, env)
  t.teardown(config.cleanup)
  return config
}

t.test('a backup queued on an API-only instance runs on a worker instance, and the API instance sees it all', async t => {
  const config = await setUp(t)
  const api = await open(config, 'none')
  const worker = await open(config, 'all')
  t.teardown(async () => { await api.close(); await worker.close() })
  const workerId = (await worker.instanceStatus())!.id
  const seen: { created: string[], status: string[], progress: Progress[] } = { created: [], status: [], progress: [] }
  api.on('created', b => seen.created.push(b.id))
  api.on('status', b => seen.status.push(`${b.id}:${b.status}`))
  api.on('progress', p => seen.progress.push(p))

  const queued = await api.create({}, 'test')
  const done = await api.waitFor(queued.id)
  t.equal(done.status, 'completed', 'the API instance hears the end of a job it does not run')
  t.equal(done.instance, workerId, 'the record names the instance that ran it')
  t.not((await api.instanceStatus())!.id, workerId)
  t.equal((await api.instanceStatus())!.worker, false)
  t.ok(seen.status.includes(`${queued.id}:running`), 'the API instance heard it start')
  t.ok(seen.progress.some(p => p.backupId === queued.id), 'and its progress, relayed through the catalog')
  t.equal((await api.validate(done.id)).verification?.ok, true, 'the files are where the record says')
  t.same(api.active(), [], 'nothing is left active on either side')
  t.same(worker.active(), [])
})

t.test('a cancel sent to one instance stops the dump running on another', async t => {
  const config = await setUp(t)
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(async () => { await gate.release() })
  const api = await open(config, 'none')
  const worker = await open(config, 'all')
  t.teardown(async () => { await api.close(); await worker.close() })
  const queued = await api.create({}, 'test')
  await waitUntil(() => api.registry.get(queued.id)?.status === 'running', 15000, 'the worker to start the dump')
  t.same(api.active().map(a => a.backup.id), [queued.id], 'the API instance lists the job running elsewhere')
  const cancelled = await api.cancel(queued.id)
  t.equal(cancelled.status, 'cancelled')
  t.equal(cancelled.error?.code, 'CANCELLED')
  t.equal((await worker.waitFor(queued.id)).status, 'cancelled', 'the worker stopped it')
  t.notOk(readdirSync(config.backupDir).some(f => f.startsWith(queued.name)), 'its partial file is gone')

  await t.rejects(api.cancel(queued.id), { code: 'INVALID_STATE' }, 'a second cancel is refused, as for a local job')
})

t.test('a job still queued is cancelled at once, wherever it was queued', async t => {
  const config = await setUp(t)
  const api = await open(config, 'none')
  t.teardown(async () => { await api.close() })
  const queued = await api.create({}, 'test')
  const cancelled = await api.cancel(queued.id)
  t.equal(cancelled.status, 'cancelled')
  t.match(cancelled.error?.message, /while queued/)
  const row = await cluster.psql(`SELECT state FROM pgkeep.jobs WHERE id = '${queued.id}'`, CATALOG)
  t.equal(row.trim(), 'cancelled', 'the job row says so too: no worker will take it')
})

t.test('queued jobs outlive the instance that queued them and run when a worker comes', async t => {
  const config = await setUp(t)
  const api = await open(config, 'none')
  const ids = [(await api.create({}, 'test')).id, (await api.create({}, 'test')).id]
  await api.close()
  const worker = await open(config, 'all')
  t.teardown(async () => { await worker.close() })
  for (const id of ids) t.equal((await worker.waitFor(id)).status, 'completed')
})

t.test('kill -9 of the instance running a dump: another marks it INTERRUPTED once its lease runs out, and removes its partial file', async t => {
  const config = await setUp(t)
  const gate = await holdDumpGate(cluster, APP)
  t.teardown(async () => { await gate.release() })
  const api = await open(config, 'none')
  t.teardown(async () => { await api.close() })
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/shared-worker-child.ts')], {
    env: { ...process.env, DATABASE_URL: cluster.url(APP), PGKEEP_BACKUP_DIR: config.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  await waitUntil(() => out.includes('INSTANCE '), 30000, 'the child instance to start')
  const queued = await api.create({}, 'test')
  await waitUntil(() => out.includes(`RUNNING ${queued.id}`), 30000, 'the child to run the dump')
  await waitUntil(() => readdirSync(config.backupDir).some(f => f.startsWith(queued.name) && f.includes('partial')), 15000, 'its partial file')
  child.kill('SIGKILL')
  const ended: Backup = await api.waitFor(queued.id)
  t.equal(ended.status, 'failed')
  t.equal(ended.error?.code, 'INTERRUPTED')
  t.match(ended.error?.message, /stopped renewing its lease/)
  t.notOk(readdirSync(config.backupDir).some(f => f.startsWith(queued.name)), 'the partial file was removed')
  const row = async (): Promise<string> => (await cluster.psql(`SELECT state || ' ' || (cleaned_at IS NOT NULL) || ' ' || cleanup_attempts FROM pgkeep.jobs WHERE id = '${queued.id}'`, CATALOG)).trim()
  await waitUntil(async () => await row() !== 'interrupted false 1', 15000, 'the clean-up to be recorded')
  t.equal(await row(), 'interrupted true 1', 'the job row is interrupted and cleaned up, once')
})

t.test('pgkeep create (CLI) runs its own job and leaves a server\'s queued jobs alone', async t => {
  const config = await setUp(t)
  const api = await open(config, 'none')
  t.teardown(async () => { await api.close() })
  const serversJob = await api.create({}, 'test')
  const io = memoryIO({
    PATH: process.env.PATH, DATABASE_URL: cluster.url(APP), PGKEEP_BACKUP_DIR: config.backupDir, PGKEEP_PG_BIN_DIR: cluster.binDir, ...env,
  })
  t.equal(await dispatch(['create', '--json'], io), 0, io.err())
  const created = JSON.parse(io.out()) as Backup
  t.equal(created.status, 'completed', 'the CLI ran its backup without any server worker')
  t.equal(api.get(serversJob.id).status, 'queued', 'and did not take the job a server queued')
  const audited = await cluster.psql(`SELECT count(*) FROM pgkeep.audit WHERE entry->>'action' = 'backup.create' AND entry->>'backupId' = '${created.id}'`, CATALOG)
  t.equal(audited.trim(), '1', 'its audit line is in the catalog, written through the engine\'s connection')
  t.equal((await api.cancel(serversJob.id)).status, 'cancelled')
})

t.test('a record in flight whose job row is gone is failed INTERRUPTED at start-up, not left queued for ever', async t => {
  const config = await setUp(t)
  const api = await open(config, 'none')
  const queued = await api.create({}, 'test')
  await api.close()
  await cluster.psql(`DELETE FROM pgkeep.jobs WHERE id = '${queued.id}'`, CATALOG)
  // older than one lease: its job row cannot still be on its way
  await cluster.psql(`UPDATE pgkeep.backups SET record = jsonb_set(record, '{createdAt}', '"2020-01-01T00:00:00.000Z"'), change_seq = nextval('pgkeep.backups_change_seq') WHERE id = '${queued.id}'`, CATALOG)
  const again = await open(config, 'none')
  t.teardown(async () => { await again.close() })
  const b = again.get(queued.id)
  t.equal(b.status, 'failed')
  t.equal(b.error?.code, 'INTERRUPTED')
  t.notOk(existsSync(join(config.backupDir, queued.name)))
})
