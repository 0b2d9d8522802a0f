import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../../helpers/sample-db.ts'
import { setupApp } from '../helper.ts'
import { newAgeKey } from '../../helpers/age-keys.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'downloads_enc', { rows: 2000 })
const keys = mkdtempSync(join(tmpdir(), 'pgkeep-enc-keys-'))
t.teardown(() => rmSync(keys, { recursive: true, force: true }))
const { identity, recipient } = newAgeKey(keys, 'key')
const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex')

const { app, config, as } = await setupApp(t, cluster, 'downloads_enc', {}, { encryption: { recipients: [recipient], identityFile: identity } })
const service = app.backupService

async function completed (body: Record<string, unknown>): Promise<Backup> {
  const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: body })
  const done = await service.waitFor(res.json().backup.id)
  if (done.status !== 'completed') throw new Error(JSON.stringify(done.error))
  return done
}

t.test('an encrypted backup downloads as stored, or decrypted (still compressed) with ?decrypt=true', async t => {
  const b = await completed({ format: 'custom', compression: 'zstd' })
  t.match(b.name, /\.dump\.zst\.age$/)
  const stored = await as('operator', { method: 'GET', url: `/api/backup/download/${b.id}` })
  t.equal(stored.statusCode, 200)
  t.equal(sha256(stored.rawPayload), b.sha256, 'as stored: the recorded checksum, no key needed to check it')

  const plain = await as('operator', { method: 'GET', url: `/api/backup/download/${b.id}?decrypt=true` })
  t.equal(plain.statusCode, 200)
  t.equal(plain.headers['content-disposition'], `attachment; filename="${b.name.replace(/\.age$/, '')}"`)
  t.equal(plain.headers['accept-ranges'], 'none')
  const expected = execFileSync('age', ['-d', '-i', identity, join(config.backupDir, b.name)], { maxBuffer: 1024 * 1024 * 1024 })
  t.ok(plain.rawPayload.equals(expected), 'the same bytes as age -d of the stored file')
  t.equal(plain.rawPayload.subarray(0, 4).toString('hex'), '28b52ffd', 'a zstd frame: decrypted, still compressed')
})

t.test('stored bytes swapped for another valid encryption of the same size: the decrypted download is cut', async t => {
  const b = await completed({ format: 'custom', compression: 'none' })
  await service.validate(b.id)
  // a recent verification makes the read check only sizes: the swap is caught by the hash taken on the way
  const file = join(config.backupDir, b.name)
  const big = { maxBuffer: 1024 * 1024 * 1024 }
  const swapped = execFileSync('age', ['-e', '-r', recipient], { input: execFileSync('age', ['-d', '-i', identity, file], big), ...big })
  t.equal(swapped.length, statSync(file).size, 'same size')
  writeFileSync(file, swapped)
  const res = await as('operator', { method: 'GET', url: `/api/backup/download/${b.id}?decrypt=true` }).catch((err: Error) => err)
  t.match(res, { message: /response destroyed before completion/ }, 'the transfer is cut, never completed')
  t.equal(service.get(b.id).verification?.ok, false, 'and the backup is flagged')
  t.not(readFileSync(file).length, 0)
})

t.test('?decrypt=true is refused for an unencrypted backup and without an identity', async t => {
  const { app: noKey, as: asNoKey } = await setupApp(t, cluster, 'downloads_enc', {}, { encryption: { recipients: [recipient] } })
  const res = await asNoKey('operator', { method: 'POST', url: '/api/backup/create', payload: { format: 'custom' } })
  const enc = await noKey.backupService.waitFor(res.json().backup.id)
  const refused = await asNoKey('operator', { method: 'GET', url: `/api/backup/download/${enc.id}?decrypt=true` })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'INVALID_STATE', message: /set PGKEEP_AGE_IDENTITY_FILE/ })

  const { app: clear, as: asClear } = await setupApp(t, cluster, 'downloads_enc')
  const made = await asClear('operator', { method: 'POST', url: '/api/backup/create', payload: { format: 'custom' } })
  const unencrypted = await clear.backupService.waitFor(made.json().backup.id)
  const bad = await asClear('operator', { method: 'GET', url: `/api/backup/download/${unencrypted.id}?decrypt=true` })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { code: 'INVALID_INPUT', message: /is not encrypted/ })
  const junk = await asClear('operator', { method: 'GET', url: `/api/backup/download/${unencrypted.id}?decrypt=maybe` })
  t.equal(junk.statusCode, 400)
})
