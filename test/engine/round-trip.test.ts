import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { BackupFormat, Compression } from '../../schemas/backup.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint, testConfig } from '../helpers/sample-db.ts'
import { openService } from '../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'roundtrip_shop')
const source = await databaseFingerprint(cluster, 'roundtrip_shop')
const config = testConfig(cluster, 'roundtrip_shop')
t.teardown(config.cleanup)
const service = await openService(config)
t.teardown(() => service.close({ cancelRunning: true }))

const cases: [BackupFormat, Compression][] = [
  ['custom', 'zstd'], ['custom', 'gzip'], ['custom', 'none'],
  ['plain', 'zstd'], ['plain', 'gzip'], ['plain', 'none'],
  ['tar', 'zstd'], ['tar', 'none'],
  ['directory', 'gzip'], ['directory', 'none'],
]

for (const [format, compression] of cases) {
  t.test(`a ${format}/${compression} backup validates and restores to the same schema and rows`, async t => {
    const queued = await service.create({ format, compression }, 'test')
    t.equal(queued.status, 'queued')
    const done = await service.waitFor(queued.id)
    t.equal(done.status, 'completed', done.error?.message ?? '')
    t.ok(done.sha256 && done.sizeBytes && done.rawBytes, 'checksum and sizes recorded')
    t.equal(done.tablesCount, 6, 'tables whose data pg_dump copies: partition leaves and the quoted ones included')
    t.match(done.pgDumpVersion, /^\d+\.\d+/)
    t.ok(existsSync(join(config.backupDir, done.name)), 'final file in place')
    t.ok(existsSync(join(config.backupDir, `${done.name}.manifest.json`)), 'manifest beside it')
    t.notOk(existsSync(join(config.backupDir, `${done.name}.partial`)), 'no partial left')

    const checked = await service.validate(done.id)
    t.equal(checked.verification?.ok, true, checked.verification?.message ?? '')

    const db = `roundtrip_restored_${format}_${compression}`
    const job = await service.restore(done.id, { database: db, create: true })
    await job.done
    t.equal(await databaseFingerprint(cluster, db), source, 'restored database equals the source')
  })
}
