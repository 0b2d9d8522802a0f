import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import type { Config } from '../../../server/config.ts'
import type { BackupService } from '../../../server/engine/backup-service.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint, testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'

const run = promisify(execFile)
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'copies_shop', { rows: 20000, padding: 400 })
const source = await databaseFingerprint(cluster, 'copies_shop')

const scratch = mkdtempSync(join(tmpdir(), 'pgkeep-copies-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')
const urlOf = (dir: string): string => pathToFileURL(dir).href

/** An empty directory to use as a store. */
async function storeDir (name: string): Promise<string> {
  const dir = join(scratch, name)
  await mkdir(dir)
  return dir
}

/** A service over a fresh backups dir with these env settings (storage, copies), both gone at the test's end. */
async function serviceWith (t: Test, env: Record<string, string>): Promise<{ service: BackupService, config: Config }> {
  const config = testConfig(cluster, 'copies_shop', env)
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  return { service, config }
}

t.test('one dump lands in the primary and every copy, byte for byte, each with its manifest', async t => {
  const copyA = await storeDir('copy-a')
  const copyB = await storeDir('copy-b')
  const { service, config } = await serviceWith(t, { PGKEEP_STORAGE_COPIES: `${copyA},${copyB}` })

  const done = await service.waitFor((await service.create({ format: 'custom', compression: 'zstd' }, 'test')).id)
  t.equal(done.status, 'completed', done.error?.message ?? '')
  t.same(done.copies, [{ storage: urlOf(copyA), status: 'completed' }, { storage: urlOf(copyB), status: 'completed' }])
  for (const dir of [config.backupDir, copyA, copyB]) {
    t.equal(sha256(join(dir, done.name)), done.sha256, `${dir}: the same bytes`)
    const manifest = JSON.parse(readFileSync(join(dir, `${done.name}.manifest.json`), 'utf8'))
    t.equal(manifest.files[0].sha256, done.sha256, `${dir}: manifest beside it`)
    t.notOk(readdirSync(dir).some(n => n.endsWith('.partial')), `${dir}: no partial left`)
  }

  await service.pin(done.id, true)
  t.equal(JSON.parse(readFileSync(join(copyA, `${done.name}.manifest.json`), 'utf8')).backup.pinned, true, 'a pin reaches the copies\' manifests too')

  await service.delete(done.id)
  for (const dir of [config.backupDir, copyA, copyB]) {
    t.notOk(existsSync(join(dir, done.name)), `${dir}: data deleted`)
    t.notOk(existsSync(join(dir, `${done.name}.manifest.json`)), `${dir}: manifest deleted`)
  }
})

t.test('a copy that cannot start or fails on the way is recorded failed; the backup completes in the others', async t => {
  const good = await storeDir('copy-good')
  // a file where a directory should be: the copy cannot even start
  const notADir = join(scratch, 'not-a-dir')
  writeFileSync(notADir, 'x')
  const copies = [good, notADir]
  // a 1 MiB tmpfs fills up half-way through the dump (root can mount; otherwise this case is left out)
  const tiny = await storeDir('tiny')
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tiny]).then(() => true, () => false)
  if (mounted) {
    t.teardown(() => run('umount', [tiny]).then(() => {}, () => {}))
    copies.push(tiny)
  } else t.comment('tmpfs mount not permitted: the copy that fills up on the way is not tried')

  const { service } = await serviceWith(t, { PGKEEP_STORAGE_COPIES: copies.join(',') })
  const done = await service.waitFor((await service.create({ format: 'custom', compression: 'none' }, 'test')).id)
  t.equal(done.status, 'completed', done.error?.message ?? '')
  t.ok((done.sizeBytes ?? 0) > 1024 * 1024, 'the dump is larger than the tiny copy store')
  t.match(done.copies?.[0], { storage: urlOf(good), status: 'completed' })
  t.match(done.copies?.[1], { storage: urlOf(notADir), status: 'failed', error: { code: 'STORAGE_NOT_FOUND' } })
  if (mounted) {
    t.match(done.copies?.[2], { storage: urlOf(tiny), status: 'failed', error: { code: 'DISK_FULL' } })
    t.same(readdirSync(tiny), [], 'the full copy store is left empty: no partial, no data, no manifest')
  }
  t.equal(sha256(join(good, done.name)), done.sha256)
  t.equal((await service.validate(done.id)).verification?.ok, true)
})

t.test('a copy store alone rebuilds the catalog, and its backups restore', async t => {
  const copy = await storeDir('copy-offsite')
  const { service } = await serviceWith(t, { PGKEEP_STORAGE_COPIES: copy })
  const done = await service.waitFor((await service.create({ format: 'tar', compression: 'gzip' }, 'test')).id)
  t.equal(done.status, 'completed', done.error?.message ?? '')
  await service.close()

  // the pgkeep machine is gone: a new one points its storage at the copy
  const { service: rebuilt } = await serviceWith(t, { PGKEEP_STORAGE: copy })
  const [found] = rebuilt.list().items
  t.match(found, { id: done.id, name: done.name, status: 'completed', sha256: done.sha256, storage: urlOf(copy) })
  t.equal((await rebuilt.validate(done.id)).verification?.ok, true)
  const job = await rebuilt.restore(done.id, { database: 'copies_restored', create: true })
  await job.done
  t.equal(await databaseFingerprint(cluster, 'copies_restored'), source)
})

t.test('directory format is refused where it cannot be written', async t => {
  const { service } = await serviceWith(t, { PGKEEP_STORAGE_COPIES: await storeDir('copy-dir-refused') })
  await t.rejects(service.create({ format: 'directory' }, 'test'), { code: 'INVALID_INPUT', message: /directory is written by pg_dump to local disk.*copied to/ })
  t.same(service.list().items, [], 'nothing recorded')
})
