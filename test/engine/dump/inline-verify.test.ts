import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { validateBackup } from '../../../server/engine/verify/validator.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { testConfig } from '../../helpers/sample-db.ts'
import { openService, waitUntil } from '../../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const DB = 'inline_verify_shop'
await cluster.createDatabase(DB)
await cluster.psql("CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g; CREATE TABLE empty (k int)", DB)

const dataFiles = (dir: string): string[] => readdirSync(dir).filter(n => n.startsWith('default-'))

/** pg_restore processes reading this job's inline-check FIFO, found by their command line. */
function checkersOf (backupDir: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
  return out.split('\n').filter(l => l.includes(backupDir) && l.includes('inline-check.fifo'))
}

t.test('verify: inline checks each streamable format while it is written; the backup completes verified', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const cases = [
    { format: 'custom', compression: 'zstd', method: 'inline:pg_restore' },
    { format: 'tar', compression: 'zstd', method: 'inline:pg_restore' },
    { format: 'plain', compression: 'zstd', method: 'inline:sql-trailer' },
    { format: 'custom', compression: 'gzip', method: 'inline:pg_restore' },
    { format: 'plain', compression: 'none', method: 'inline:sql-trailer' },
  ] as const
  for (const c of cases) {
    const statuses: string[] = []
    const onStatus = (b: { id: string, status: string }): void => { statuses.push(b.status) }
    service.on('status', onStatus)
    const created = await service.create({ format: c.format, compression: c.compression, verify: 'inline' }, 'test')
    const done = await service.waitFor(created.id)
    service.off('status', onStatus)
    const label = `${c.format} + ${c.compression}`
    t.equal(done.status, 'completed', label)
    t.match(done.verification, { ok: true, method: c.method }, `${label}: completed with its verification`)
    t.ok(done.rawBytes! > 0 && done.sizeBytes! > 0, `${label}: raw ${done.rawBytes} and stored ${done.sizeBytes} bytes counted`)
    t.equal(done.options.verify, 'inline')
    // what inline vouched for, a full read confirms
    t.match(await validateBackup(done, new LocalStorage(config.backupDir)), { ok: true }, `${label}: validates in full too`)
  }
  t.same(checkersOf(config.backupDir), [], 'no check left running')
})

t.test('zstd reading pg_dump directly still records the exact raw size', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const zstd = await service.waitFor((await service.create({ compression: 'zstd' }, 'test')).id)
  const none = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  // the same database dumped twice: the same archive size but for the few bytes of its timestamps and names
  t.ok(Math.abs(zstd.rawBytes! - none.rawBytes!) < 64, `zstd's count ${zstd.rawBytes} against node's ${none.rawBytes}`)
  t.equal(none.rawBytes, none.sizeBytes)
})

t.test('directory format cannot be teed: inline falls back to the full check once the files are written', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const done = await service.waitFor((await service.create({ format: 'directory', compression: 'gzip', verify: 'inline' }, 'test')).id)
  t.equal(done.status, 'completed')
  t.match(done.verification, { ok: true, method: 'sha256+pg_restore' })
})

/**
 * A pg_dump that exits 0 having written an archive that does not read back: only a stand-in can (here: a real
 * archive of this database, cut in its data, then the rest of a clean exit).
 */
function brokenPgDump (dir: string): string {
  const archive = join(dir, 'real.dump')
  execFileSync(join(cluster.binDir, 'pg_dump'), ['-Fc', '-Z0', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-f', archive, DB])
  truncateSync(archive, Math.floor(readSize(archive) * 0.6))
  const bin = join(dir, 'bin')
  execFileSync('mkdir', ['-p', bin])
  writeFileSync(join(bin, 'pg_dump'), `#!/bin/sh
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 15.14"; exit 0; fi
cat '${archive}'
exit 0
`)
  chmodSync(join(bin, 'pg_dump'), 0o755)
  execFileSync('ln', ['-s', join(cluster.binDir, 'pg_restore'), join(bin, 'pg_restore')])
  return bin
}

function readSize (path: string): number {
  return Number(execFileSync('stat', ['-c', '%s', path], { encoding: 'utf8' }).trim())
}

t.test('an archive that does not read back fails the backup: nothing is kept, nothing marked good', async t => {
  const bin = brokenPgDump(t.testdir())
  for (const compression of ['zstd', 'none'] as const) {
    const config = testConfig(cluster, DB, { PGKEEP_PG_BIN_DIR: bin })
    t.teardown(config.cleanup)
    const service = await openService(config)
    t.teardown(() => service.close({ cancelRunning: true }))
    const done = await service.waitFor((await service.create({ compression, verify: 'inline' }, 'test')).id)
    t.equal(done.status, 'failed', compression)
    t.equal(done.error?.code, 'INTEGRITY_FAILED')
    t.match(done.error?.message, /inline verification failed.*pg_restore/)
    t.equal(done.verification, undefined)
    t.same(dataFiles(config.backupDir), [], `${compression}: no data, partial or manifest`)
    t.equal(service.list({ status: 'completed' }).total, 0)

    const off = await service.waitFor((await service.create({ compression }, 'test')).id)
    t.equal(off.status, 'completed', 'without verification the same bytes are kept: the check is what caught them')
  }
})

t.test('cancelling a dump under inline verification stops the check too and leaves nothing', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const gate = await holdDumpGate(cluster, DB)
  t.teardown(() => gate.release())
  const created = await service.create({ verify: 'inline' }, 'test')
  await waitUntil(() => checkersOf(config.backupDir).length > 0, 30_000, 'the inline check to start')
  const done = await service.cancel(created.id)
  t.equal(done.status, 'cancelled')
  t.same(dataFiles(config.backupDir), [], 'no partial file')
  t.same(checkersOf(config.backupDir), [], 'pg_restore stopped')
  t.notOk(existsSync(join(config.backupDir, '.pgkeep', 'run')) && readdirSync(join(config.backupDir, '.pgkeep', 'run')).length > 0, 'the FIFO went with the job\'s directory')
})
