// Issue 12 (a tiny create within +0.3 s of the bare pipeline): registry.json is written only where a crash or another
// process needs the record, and a start-up with nothing to repair writes nothing at all.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { openService, waitUntil } from '../helpers/service.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import type { Backup } from '../../schemas/backup.ts'

const DB = 'registry_writes_app'
const GATED = 'registry_writes_gated'
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, DB)
await cluster.createDatabase(GATED)
await cluster.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1)', GATED)

/** What is on disk right now for one backup, read as another process would. */
function onDisk (backupDir: string, id: string): Backup | undefined {
  const doc = JSON.parse(readFileSync(join(backupDir, 'registry.json'), 'utf8')) as { backups: Backup[] }
  return doc.backups.find(b => b.id === id)
}

t.test('a create writes registry.json three times: queued, running, completed (with the facts learned on the way)', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const statuses: string[] = []
  // the record another process sees at each status change is the one this process announces
  const seenOnDisk: string[] = []
  service.on('status', b => { statuses.push(b.status); seenOnDisk.push(onDisk(config.backupDir, b.id)?.status ?? 'missing') })
  // pg_dump's first line: it runs, so a crash from here on must find the record in flight
  let whenPgDumpSpoke: string | undefined
  service.on('log', e => { if (!e.line.startsWith('pgkeep:')) whenPgDumpSpoke ??= onDisk(config.backupDir, e.backupId)?.status ?? 'missing' })
  const before = service.registry.writeCount
  const queued = await service.create({}, 'test')
  t.equal(onDisk(config.backupDir, queued.id)?.status, 'queued', 'the record is on disk before the job starts')
  const done = await service.waitFor(queued.id)
  t.equal(done.status, 'completed')
  t.same(statuses, ['running', 'completed'], 'no "verifying" when nothing is verified after the dump')
  t.same(seenOnDisk, ['running', 'completed'])
  t.equal(whenPgDumpSpoke, 'running', '"running" is on disk before pg_dump starts (it is written while the target is inspected)')
  t.equal(service.registry.writeCount - before, 3, 'queued, running, completed')
  t.match(onDisk(config.backupDir, done.id), { status: 'completed', pgServerVersion: /^15\./, pgDumpVersion: /^\d+\.\d+/, tablesCount: 6 },
    'the versions and the table count reach the record with the completion')
})

t.test('verify: after still records "verifying" while the validation runs', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const statuses: string[] = []
  service.on('status', b => statuses.push(b.status))
  const before = service.registry.writeCount
  const done = await service.waitFor((await service.create({ verify: 'after' }, 'test')).id)
  t.match(done, { status: 'completed', verification: { ok: true } })
  t.same(statuses, ['running', 'verifying', 'completed'])
  t.equal(service.registry.writeCount - before, 4)
})

t.test('a dump that ends early keeps the versions it learned in its final record', async t => {
  const config = testConfig(cluster, GATED)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const gate = await holdDumpGate(cluster, GATED)
  t.teardown(gate.release)
  const queued = await service.create({}, 'test')
  // pg_dump is past the inspection and waits on the gate's lock: the facts are known, no byte is written yet
  await waitUntil(async () => Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-${queued.id}' AND wait_event_type = 'Lock'`, GATED)) > 0, 30_000, 'pg_dump waiting on the gate')
  const before = service.registry.writeCount
  const cancelled = await service.cancel(queued.id)
  t.equal(cancelled.status, 'cancelled')
  t.equal(service.registry.writeCount - before, 1, 'one write ends the job')
  t.match(onDisk(config.backupDir, queued.id), { status: 'cancelled', pgServerVersion: /^15\./, pgDumpVersion: /^\d+\.\d+/, tablesCount: 1 })
})

t.test('a start-up with nothing to repair does not rewrite registry.json or any other state file', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const first = await openService(config)
  const done = await first.waitFor((await first.create({}, 'test')).id)
  await first.pin(done.id, true)
  await first.close()
  const path = join(config.backupDir, 'registry.json')
  const stamp = (): string => { const s = statSync(path); return `${s.ino}:${s.size}:${s.mtimeMs}` }
  const before = stamp()
  const text = readFileSync(path, 'utf8')
  for (let i = 0; i < 2; i++) {
    const service = await openService(config)
    t.equal(service.registry.writeCount, 0, `start-up ${i + 1} wrote nothing`)
    t.equal(service.get(done.id).pinned, true)
    await service.close()
  }
  t.equal(stamp(), before, 'same inode, size and mtime')
  t.equal(readFileSync(path, 'utf8'), text)
})
