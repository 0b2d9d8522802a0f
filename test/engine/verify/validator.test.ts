import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { uuidv7 } from 'uuidv7'
import type { Backup, BackupFormat, Compression } from '../../../schemas/backup.ts'
import { digestOfFiles, hashTree, manifestPath, writeManifest } from '../../../server/engine/store/manifest.ts'
import { validateBackup } from '../../../server/engine/verify/validator.ts'
import { testCluster, type TestCluster } from '../../helpers/pg-cluster.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'

const run = promisify(execFile)

const cluster: TestCluster = await testCluster()
t.teardown(cluster.stop)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-validator-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

await cluster.createDatabase('validator_src')
await cluster.psql(`
  CREATE TABLE items (id int PRIMARY KEY, label text, payload text);
  INSERT INTO items SELECT g, 'item ' || g, md5(g::text) FROM generate_series(1, 20000) g;
  CREATE TABLE notes (id serial PRIMARY KEY, body text);
  INSERT INTO notes (body) SELECT repeat('note ', g % 20) FROM generate_series(1, 2000) g;
`, 'validator_src')

const dumpArgs = ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', 'validator_src']

/** Real pg_dump output; uncompressed inside so our own compression is the only one (as pgkeep dumps). */
const dumps = new Map<string, Promise<Buffer>>()
async function dump (format: Exclude<BackupFormat, 'directory'>): Promise<Buffer> {
  let d = dumps.get(format)
  if (!d) dumps.set(format, d = dumpNow(format))
  return Buffer.from(await d)
}
async function dumpNow (format: Exclude<BackupFormat, 'directory'>): Promise<Buffer> {
  const f = { custom: 'c', plain: 'p', tar: 't' }[format]
  const { stdout } = await run(join(cluster.binDir, 'pg_dump'), [...dumpArgs, '-F', f, ...(format === 'custom' ? ['-Z', '0'] : [])],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

async function compress (data: Buffer, compression: Compression): Promise<Buffer> {
  if (compression === 'gzip') return gzipSync(data)
  if (compression === 'none') return data
  const zstd = execFile('zstd', ['-q', '-c', '-'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  const out = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    zstd.stdout!.on('data', (c: Buffer) => chunks.push(c))
    zstd.on('close', code => code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd ${code}`)))
  })
  zstd.stdin!.end(data)
  return await out
}

const ext = (format: BackupFormat, compression: Compression): string =>
  ({ custom: '.dump', plain: '.sql', tar: '.tar', directory: '' }[format]) + ({ zstd: '.zst', gzip: '.gz', none: '' }[compression])

function record (name: string, format: BackupFormat, compression: Compression): Backup {
  return {
    id: uuidv7(),
    name,
    target: 'default',
    database: 'validator_src',
    format,
    compression,
    level: compression === 'zstd' ? 3 : compression === 'gzip' ? 6 : 0,
    options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
    status: 'completed',
    createdAt: new Date().toISOString(),
    createdBy: 'test',
    pinned: false,
  }
}

/** Writes the manifest for whatever is on disk now: how a backup looks when its hashes match its (maybe broken) bytes. */
async function remanifest (b: Backup): Promise<void> {
  await writeManifest(new LocalStorage(dir), b, await hashTree(dir, b.name))
}

let seq = 0
async function singleFileBackup (format: Exclude<BackupFormat, 'directory'>, compression: Compression, bytes?: Buffer): Promise<Backup> {
  const b = record(`v${++seq}-${format}${ext(format, compression)}`, format, compression)
  writeFileSync(join(dir, b.name), bytes ?? await compress(await dump(format), compression))
  await remanifest(b)
  return b
}

async function directoryBackup (): Promise<Backup> {
  const b = record(`v${++seq}-dir`, 'directory', 'none')
  await run(join(cluster.binDir, 'pg_dump'), [...dumpArgs, '-F', 'd', '-f', join(dir, b.name)])
  await remanifest(b)
  return b
}

function flipMiddleByte (path: string): void {
  const data = readFileSync(path)
  data[data.length >> 1] ^= 0xff
  writeFileSync(path, data)
}

t.test('complete backups in every format and compression validate', async t => {
  for (const format of ['custom', 'plain', 'tar'] as const) {
    for (const compression of ['zstd', 'gzip', 'none'] as const) {
      const b = await singleFileBackup(format, compression)
      const r = await validateBackup(b, new LocalStorage(dir))
      t.same(r, { ok: true, method: format === 'plain' ? 'sha256+sql-trailer' : 'sha256+pg_restore' }, `${format}/${compression}`)
    }
  }
  t.same(await validateBackup(await directoryBackup(), new LocalStorage(dir)), { ok: true, method: 'sha256+pg_restore' }, 'directory')
})

t.test('a custom archive missing its last 1 KB fails, although pg_restore --list accepts it', async t => {
  const full = await dump('custom')
  const b = await singleFileBackup('custom', 'none', full)
  writeFileSync(join(dir, b.name), full.subarray(0, full.length - 1024))

  const r = await validateBackup(b, new LocalStorage(dir))
  t.equal(r.ok, false)
  t.equal(r.message, `file truncated: ${b.name} has ${full.length - 1024} of ${full.length} bytes`)

  await remanifest(b)
  const list = await run(join(cluster.binDir, 'pg_restore'), ['--list', join(dir, b.name)])
  t.match(list.stdout, /TABLE DATA public items/, 'pg_restore --list reads the cut archive without complaint')
  const structural = await validateBackup(b, new LocalStorage(dir))
  t.equal(structural.ok, false, 'the full read catches it even when the manifest matches the cut file')
  t.match(structural.message, /pg_restore: error: could not read from input file/)
})

t.test('one flipped byte fails the checksum, and the decompressor catches it without the manifest', async t => {
  for (const compression of ['zstd', 'gzip'] as const) {
    const b = await singleFileBackup('custom', compression)
    flipMiddleByte(join(dir, b.name))
    const r = await validateBackup(b, new LocalStorage(dir))
    t.same(r, { ok: false, method: 'sha256+pg_restore', message: `sha256 mismatch in ${b.name}` }, compression)
    await remanifest(b)
    const structural = await validateBackup(b, new LocalStorage(dir))
    t.equal(structural.ok, false, `${compression}: structural check alone`)
    t.match(structural.message, new RegExp(`^${compression}`), structural.message ?? '')
  }
})

t.test('a truncated zstd file is reported by the decompressor', async t => {
  const b = await singleFileBackup('tar', 'zstd')
  const data = readFileSync(join(dir, b.name))
  writeFileSync(join(dir, b.name), data.subarray(0, data.length - 100))
  await remanifest(b)
  const r = await validateBackup(b, new LocalStorage(dir))
  t.equal(r.ok, false)
  t.match(r.message, /^zstd.*premature end/)
})

t.test('an uncompressed tar cut in half fails although pg_restore never stops reading it', async t => {
  const tar = await dump('tar')
  const b = await singleFileBackup('tar', 'none', tar.subarray(0, tar.length >> 1))
  const r = await validateBackup(b, new LocalStorage(dir), { eofGraceMs: 1000 })
  t.same(r, { ok: false, method: 'sha256+pg_restore', message: 'pg_restore did not finish within 1 s of the end of its input (a truncated archive?)' })
})

t.test('a plain dump without its trailer fails', async t => {
  const sql = (await dump('plain')).toString('utf8')
  const cut = Buffer.from(sql.slice(0, sql.lastIndexOf('-- PostgreSQL database dump complete')))
  for (const compression of ['none', 'gzip'] as const) {
    const b = await singleFileBackup('plain', compression, await compress(cut, compression))
    t.same(await validateBackup(b, new LocalStorage(dir)), {
      ok: false, method: 'sha256+sql-trailer', message: 'missing "-- PostgreSQL database dump complete" trailer',
    }, compression)
  }
  const noUnrestrict = Buffer.from(sql.slice(0, sql.lastIndexOf('\\unrestrict')))
  const b = await singleFileBackup('plain', 'none', noUnrestrict)
  const r = await validateBackup(b, new LocalStorage(dir))
  t.equal(r.ok, false, 'a dump cut between the trailer and \\unrestrict fails too')
  t.match(r.message, /unrestrict/)
})

t.test("pg_dumpall's globals validate (its \\unrestrict comes before the cluster trailer); cut before the trailer, they fail", async t => {
  const { stdout } = await run(join(cluster.binDir, 'pg_dumpall'), ['--globals-only', '--no-role-passwords', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres'], { maxBuffer: 64 * 1024 * 1024 })
  const whole = await singleFileBackup('plain', 'zstd', await compress(Buffer.from(stdout), 'zstd'))
  t.same(await validateBackup(whole, new LocalStorage(dir)), { ok: true, method: 'sha256+sql-trailer' }, 'as pg_dumpall wrote them')
  const cut = Buffer.from(stdout.slice(0, stdout.lastIndexOf('-- PostgreSQL database cluster dump complete')))
  const b = await singleFileBackup('plain', 'none', cut)
  t.same(await validateBackup(b, new LocalStorage(dir)), {
    ok: false, method: 'sha256+sql-trailer', message: 'missing "-- PostgreSQL database cluster dump complete" trailer',
  })
})

t.test('a plain SQL file recorded as custom or tar is not an archive', async t => {
  const sql = await dump('plain')
  const asCustom = await singleFileBackup('custom', 'none', sql)
  t.same(await validateBackup(asCustom, new LocalStorage(dir)), {
    ok: false, method: 'sha256+pg_restore', message: 'not a pg_dump custom archive (it looks like plain SQL)',
  })
  const asTar = await singleFileBackup('tar', 'none', sql)
  t.match((await validateBackup(asTar, new LocalStorage(dir))).message, /^not a pg_dump tar archive/)
  // zstd decodes into pg_restore over a kernel pipe, past node's sniffer: the head is read again to say why
  const zstdAsCustom = await singleFileBackup('custom', 'zstd', await compress(sql, 'zstd'))
  t.same(await validateBackup(zstdAsCustom, new LocalStorage(dir)), {
    ok: false, method: 'sha256+pg_restore', message: 'not a pg_dump custom archive (it looks like plain SQL)',
  }, 'zstd-compressed, the same words')
  const customAsPlain = await singleFileBackup('plain', 'none', await dump('custom'))
  t.match((await validateBackup(customAsPlain, new LocalStorage(dir))).message, /^not a plain SQL dump/)
})

t.test('a missing file, a missing or malformed manifest all fail without throwing', async t => {
  const b = await singleFileBackup('custom', 'gzip')
  unlinkSync(join(dir, b.name))
  t.same(await validateBackup(b, new LocalStorage(dir)), { ok: false, method: 'sha256+pg_restore', message: `missing file: ${b.name}` })

  const c = await singleFileBackup('plain', 'zstd')
  writeFileSync(manifestPath(dir, c.name), '{"manifestVersion": 1, "backup": ')
  const malformed = await validateBackup(c, new LocalStorage(dir))
  t.equal(malformed.ok, false)
  t.match(malformed.message, /manifest .* not valid JSON/)
  unlinkSync(manifestPath(dir, c.name))
  const missing = await validateBackup(c, new LocalStorage(dir))
  t.equal(missing.ok, false)
  t.match(missing.message, /manifest .*missing/)
})

t.test('a directory backup with a data file deleted or altered fails', async t => {
  const dataFile = (b: Backup): string => join(dir, b.name, readdirSync(join(dir, b.name)).filter(f => /^\d+\.dat/.test(f)).sort()[0])

  const deleted = await directoryBackup()
  const gone = dataFile(deleted)
  unlinkSync(gone)
  const r1 = await validateBackup(deleted, new LocalStorage(dir))
  t.equal(r1.ok, false)
  t.match(r1.message, /^missing file: /)
  await remanifest(deleted)
  const r1s = await validateBackup(deleted, new LocalStorage(dir))
  t.equal(r1s.ok, false, 'pg_restore notices the missing data file even when the manifest agrees')
  t.match(r1s.message, /pg_restore: error: could not open input file/)

  const altered = await directoryBackup()
  flipMiddleByte(dataFile(altered))
  const r2 = await validateBackup(altered, new LocalStorage(dir))
  t.match(r2, { ok: false, message: /^sha256 mismatch in / })
  await remanifest(altered)
  t.equal((await validateBackup(altered, new LocalStorage(dir))).ok, false, 'pg_restore notices the damaged compressed data when the manifest agrees')

  const stray = await directoryBackup()
  writeFileSync(join(dir, stray.name, 'extra.dat'), 'x')
  t.match(await validateBackup(stray, new LocalStorage(dir)), { ok: false, message: /^file not in the manifest: / })
})

t.test('only a missing backups dir, a missing tool or a cancel throw', async t => {
  const b = await singleFileBackup('custom', 'none')
  await t.rejects(validateBackup(b, new LocalStorage(join(dir, 'nope'))), { code: 'STORAGE_NOT_FOUND' })
  const empty = mkdtempSync(join(tmpdir(), 'pgkeep-nobin-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  await t.rejects(validateBackup(b, new LocalStorage(dir), { pgBinDir: empty }), { code: 'TOOL_MISSING' })
  await t.rejects(validateBackup(b, new LocalStorage(dir), { signal: AbortSignal.abort() }), { code: 'CANCELLED' })
})

t.test('a registry checksum that disagrees with the manifest fails', async t => {
  const single = await singleFileBackup('plain', 'none')
  t.equal((await validateBackup({ ...single, sha256: 'ab'.repeat(32) }, new LocalStorage(dir))).message, `sha256 of ${single.name} in the manifest differs from the registry record`)
  const d = await directoryBackup()
  const files = await hashTree(dir, d.name)
  t.same(await validateBackup({ ...d, sha256: digestOfFiles(files) }, new LocalStorage(dir)), { ok: true, method: 'sha256+pg_restore' }, 'the directory digest over the sorted manifest lines matches')
  const pathOrder = createHash('sha256').update(files.map(f => `${f.sha256}  ${f.path}\n`).join('')).digest('hex')
  t.same(await validateBackup({ ...d, sha256: pathOrder }, new LocalStorage(dir)), { ok: true, method: 'sha256+pg_restore' }, 'so does the digest over the lines in path order')
  t.equal((await validateBackup({ ...d, sha256: 'cd'.repeat(32) }, new LocalStorage(dir))).ok, false)
})
