import { join } from 'node:path'
import t from 'tap'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { openStorage, parseStorageUrl } from '../../../server/engine/storage/open-storage.ts'
import { createS3Client } from '../../../server/engine/storage/s3-storage.ts'

t.test('s3:// urls name a bucket and a prefix; paths and file:// urls a directory', async t => {
  t.same(parseStorageUrl('s3://backups'), { kind: 's3', bucket: 'backups', prefix: '' })
  t.same(parseStorageUrl('s3://backups/'), { kind: 's3', bucket: 'backups', prefix: '' })
  t.same(parseStorageUrl('s3://my.backups-1/pg/prod/'), { kind: 's3', bucket: 'my.backups-1', prefix: 'pg/prod' })
  t.same(parseStorageUrl('/var/lib/pgkeep'), { kind: 'local', dir: '/var/lib/pgkeep' })
  t.same(parseStorageUrl('file:///var/lib/pg%20keep'), { kind: 'local', dir: '/var/lib/pg keep' })
})

t.test('a bad s3:// url is CONFIG_INVALID with the reason', async t => {
  const cases: Array<[string, RegExp]> = [
    ['s3://', /bucket name is empty/],
    ['s3:///prefix', /bucket name is empty/],
    ['s3://a', /not a valid bucket name/],
    ['s3://bad_bucket!/x', /not a valid bucket name/],
    ['s3://-leading/x', /not a valid bucket name/],
    ['s3://two..dots', /not a valid bucket name/],
    ['s3://AKIA:secret@bucket/x', /no credentials/],
    ['s3://bucket/a/../b', /\.\. segments/],
    ['s3://bucket/..', /\.\. segments/],
    ['s3://bucket/a//b', /empty path segment/],
    ['s3://bucket/x?region=eu', /no query/],
    ['gs://bucket/x', /only s3:\/\//],
    ['', /empty/],
  ]
  for (const [url, why] of cases) {
    t.throws(() => parseStorageUrl(url), { code: 'CONFIG_INVALID', message: why }, url)
  }
})

t.test('openStorage returns the local directory or the bucket, and S3 keys live under the prefix', async t => {
  const dir = t.testdir()
  const local = openStorage(dir, { stateDir: join(dir, '.pgkeep', 'uploads') })
  t.ok(local instanceof LocalStorage)
  const s3 = openStorage('s3://bucket/pg/prod', { stateDir: join(dir, '.pgkeep', 'uploads'), forcePathStyle: true })
  // the AWS SDK is loaded on first use (storage/lazy-storage.ts), so the bucket is known by its url and kind first
  t.equal(s3.kind, 's3')
  t.equal(s3.url, 's3://bucket/pg/prod')
  t.equal((openStorage('s3://bucket', { stateDir: dir })).url, 's3://bucket')
})

t.test('the SDK\'s region is used when configured, us-east-1 when nothing is', async t => {
  const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION, AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE }
  t.teardown(() => { for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v } })
  delete process.env.AWS_REGION
  delete process.env.AWS_DEFAULT_REGION
  process.env.AWS_CONFIG_FILE = join(t.testdir(), 'no-such-config')
  t.equal(await createS3Client().config.region(), 'us-east-1')
  process.env.AWS_REGION = 'eu-west-3'
  t.equal(await createS3Client().config.region(), 'eu-west-3')
})
