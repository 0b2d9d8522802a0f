import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../../helpers/sample-db.ts'
import { auditLines, setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'downloads_app', { rows: 2000 })
const { app, config, as } = await setupApp(t, cluster, 'downloads_app')
const service = app.backupService
const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex')

async function completed (body: Record<string, unknown>): Promise<Backup> {
  const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: body })
  const done = await service.waitFor(res.json().backup.id)
  if (done.status !== 'completed') throw new Error(JSON.stringify(done.error))
  return done
}
const download = (id: string, headers: Record<string, string> = {}) =>
  as('operator', { method: 'GET', url: `/api/backup/download/${id}`, headers })

t.test('a single-file backup downloads whole with length, name, ETag = its sha256, and the bytes hash to the record', async t => {
  const b = await completed({ format: 'custom', compression: 'gzip' })
  const res = await download(b.id)
  t.equal(res.statusCode, 200)
  t.equal(Number(res.headers['content-length']), b.sizeBytes)
  t.equal(res.headers['content-disposition'], `attachment; filename="${b.name}"`)
  t.equal(res.headers.etag, `"${b.sha256}"`)
  t.equal(res.headers['accept-ranges'], 'bytes')
  t.equal(sha256(res.rawPayload), b.sha256)
  t.ok((await auditLines(app)).some(l => l.action === 'backup.download' && l.backupId === b.id && l.outcome === 'ok'))
})

t.test('two Range halves concatenated hash to the sha256 of the API record', async t => {
  const b = await completed({ format: 'plain', compression: 'none' })
  const size = b.sizeBytes!
  const mid = Math.floor(size / 2)
  const first = await download(b.id, { range: `bytes=0-${mid - 1}` })
  const second = await download(b.id, { range: `bytes=${mid}-` })
  t.equal(first.statusCode, 206)
  t.equal(second.statusCode, 206)
  t.equal(first.headers['content-range'], `bytes 0-${mid - 1}/${size}`)
  t.equal(second.headers['content-range'], `bytes ${mid}-${size - 1}/${size}`)
  t.equal(Number(first.headers['content-length']) + Number(second.headers['content-length']), size)
  const status = (await as('viewer', { method: 'GET', url: `/api/backup/status/${b.id}` })).json().backup
  t.equal(sha256(Buffer.concat([first.rawPayload, second.rawPayload])), status.sha256)
  const suffix = await download(b.id, { range: 'bytes=-10' })
  t.equal(suffix.rawPayload.length, 10)
  const past = await download(b.id, { range: `bytes=${size}-` })
  t.equal(past.statusCode, 416)
  t.equal(past.headers['content-range'], `bytes */${size}`)
  t.equal(past.json().code, 'INVALID_INPUT')
  const staleIfRange = await download(b.id, { range: 'bytes=0-9', 'if-range': '"something-else"' })
  t.equal(staleIfRange.statusCode, 200, 'If-Range with another ETag gets the whole file')
})

t.test('a directory-format backup streams as a tar holding every file of its manifest', async t => {
  const b = await completed({ format: 'directory', compression: 'none' })
  const res = await download(b.id)
  t.equal(res.statusCode, 200, res.statusCode === 200 ? 'ok' : res.body)
  t.equal(res.headers['content-disposition'], `attachment; filename="${b.name}.tar"`)
  t.equal(res.headers['content-type'], 'application/x-tar')
  t.equal(Number(res.headers['content-length']), res.rawPayload.length, 'Content-Length is exact')
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-tar-'))
  writeFileSync(join(dir, 'b.tar'), res.rawPayload)
  const listed = execFileSync('tar', ['-tf', join(dir, 'b.tar')]).toString().trim().split('\n').sort()
  const files = (await service.openVerified(b.id)).files.map(f => f.path).sort()
  t.same(listed, files)
  t.ok(listed.some(p => p === `${b.name}/toc.dat`))
  execFileSync('tar', ['-xf', join(dir, 'b.tar'), '-C', dir])
  for (const f of (await service.openVerified(b.id)).files) {
    t.equal(sha256(readFileSync(join(dir, f.path))), f.sha256, f.path)
  }
})

t.test('only completed backups download: a cancelled one is 409 INVALID_STATE', async t => {
  const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: { compression: 'zstd', level: 19 } })
  await as('operator', { method: 'POST', url: `/api/backup/${res.json().backup.id}/cancel` })
  const dl = await download(res.json().backup.id)
  t.equal(dl.statusCode, 409)
  t.equal(dl.json().code, 'INVALID_STATE')
})

t.test('a backup whose last verification failed gets the full check before the first byte: 409 INTEGRITY_FAILED and no backup bytes', async t => {
  const b = await completed({ format: 'custom', compression: 'none' })
  const file = join(config.backupDir, b.name)
  // same size, one byte flipped: only a full re-hash sees it
  const fd = openSync(file, 'r+')
  const byte = Buffer.alloc(1)
  readSync(fd, byte, 0, 1, 100)
  byte[0] ^= 0xff
  writeSync(fd, byte, 0, 1, 100)
  closeSync(fd)
  t.equal((await service.validate(b.id)).verification?.ok, false)
  const res = await download(b.id)
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'INTEGRITY_FAILED')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.ok(res.rawPayload.length < 1000)
  t.ok((await auditLines(app)).some(l => l.action === 'backup.download' && l.backupId === b.id && l.outcome === 'failed'))
})

t.test('a truncated file is caught before the first byte, even right after a good verification (the sizes no longer match), and flagged', async t => {
  const b = await completed({ format: 'plain', compression: 'gzip' })
  const file = join(config.backupDir, b.name)
  truncateSync(file, statSync(file).size - 7)
  const res = await download(b.id)
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'INTEGRITY_FAILED')
  t.equal(service.get(b.id).verification?.ok, false)
})
