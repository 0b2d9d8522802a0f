import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const DB = 'encoding_route_shop'
await cluster.createDatabase(DB)
await cluster.psql('CREATE TABLE payload AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v FROM generate_series(1, 200000) g', DB)

t.test('pg_dump writing straight into zstd, which writes the file: progress counts up to the exact raw size, the checksum is of the file', async t => {
  const config = testConfig(cluster, DB)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const progress: Array<{ backupId: string, bytes: number }> = []
  service.on('progress', p => progress.push(p))
  const done = await service.waitFor((await service.create({ compression: 'zstd' }, 'test')).id)
  t.equal(done.status, 'completed')
  const none = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.ok(Math.abs(done.rawBytes! - none.rawBytes!) < 64, `zstd counted ${done.rawBytes} raw bytes, node ${none.rawBytes}`)
  const own = progress.filter(p => p.backupId === done.id).map(p => p.bytes)
  t.ok(own.length > 1, 'progress was reported')
  t.equal(own.at(-1), done.rawBytes, 'the last progress of the zstd backup is its exact raw size')
  t.ok(own.every((b, i) => i === 0 || b >= own[i - 1]), 'and never went back')
  const file = readFileSync(join(config.backupDir, done.name))
  t.equal(file.length, done.sizeBytes)
  t.equal(createHash('sha256').update(file).digest('hex'), done.sha256, 'the recorded checksum is the stored file\'s')
})
