import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { digestOfFiles, hashTree, manifestPath, readManifest, writeManifest } from '../../../server/engine/store/manifest.ts'
import { makeBackup, tempDir } from './fixtures.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

t.test('a written manifest reads back identical, next to its backup, mode 0640', async t => {
  const dir = tempDir(t)
  const backup = makeBackup({ name: 'nightly.dump' })
  writeFileSync(join(dir, 'nightly.dump'), 'PGDMP data')
  const files = await hashTree(dir, 'nightly.dump')
  t.same(files, [{ path: 'nightly.dump', sizeBytes: 10, sha256: sha('PGDMP data') }])
  await writeManifest(new LocalStorage(dir), backup, files)
  t.equal(manifestPath(dir, 'nightly.dump'), join(dir, 'nightly.dump.manifest.json'))
  t.equal(statSync(manifestPath(dir, 'nightly.dump')).mode & 0o777, 0o640)
  t.same(await readManifest(new LocalStorage(dir), 'nightly.dump'), { manifestVersion: 1, backup, files })
})

t.test('a directory backup is hashed file by file, sorted, with paths relative to the backups dir', async t => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'db.dir', 'sub'), { recursive: true })
  writeFileSync(join(dir, 'db.dir', 'toc.dat'), 'toc')
  writeFileSync(join(dir, 'db.dir', '3001.dat.gz'), 'data')
  writeFileSync(join(dir, 'db.dir', 'sub', 'x'), '')
  const files = await hashTree(dir, 'db.dir')
  t.same(files.map(f => f.path), ['db.dir/3001.dat.gz', 'db.dir/sub/x', 'db.dir/toc.dat'])
  t.same(files.map(f => f.sha256), [sha('data'), sha(''), sha('toc')])
  const lines = files.map(f => `${f.sha256}  ${f.path}\n`).join('')
  t.equal(digestOfFiles(files), sha(lines), 'the directory digest is sha256 over "sha256  path" lines in path order')
  t.equal(digestOfFiles([...files].reverse()), sha(lines), 'whatever order the files come in')
  t.same((await hashTree(join(dir, 'db.dir'))).map(f => f.path), ['3001.dat.gz', 'sub/x', 'toc.dat'], 'one argument: relative to the dir itself')
})

t.test('a malformed manifest is refused with an IntegrityError that says what is wrong', async t => {
  const dir = tempDir(t)
  const backup = makeBackup()
  const good = { manifestVersion: 1, backup, files: [{ path: backup.name, sizeBytes: 1, sha256: sha('x') }] }
  const cases: [string, string, RegExp][] = [
    ['missing', '', /cannot be read \(missing\)/],
    ['truncated', JSON.stringify(good).slice(0, 40), /is not valid JSON/],
    ['version', JSON.stringify({ ...good, manifestVersion: 2 }), /is malformed: \/manifestVersion/],
    ['checksum', JSON.stringify({ ...good, files: [{ ...good.files[0], sha256: 'abc' }] }), /is malformed: \/files\/0\/sha256/],
    ['record', JSON.stringify({ ...good, backup: { ...backup, status: 'bogus' } }), /is malformed: \/backup\/status/],
    ['escape', JSON.stringify({ ...good, files: [{ ...good.files[0], path: '../etc/passwd' }] }), /outside the backups dir: \.\.\/etc\/passwd/],
    ['absolute', JSON.stringify({ ...good, files: [{ ...good.files[0], path: '/etc/passwd' }] }), /outside the backups dir/],
  ]
  for (const [name, content, message] of cases) {
    const path = join(dir, `${name}.manifest.json`)
    if (name !== 'missing') writeFileSync(path, content)
    await t.rejects(readManifest(new LocalStorage(dir), name), { code: 'INTEGRITY_FAILED', message }, name)
  }
})

t.test('writing a manifest with an invalid record or an escaping path is refused', async t => {
  const dir = tempDir(t)
  const backup = makeBackup()
  await t.rejects(writeManifest(new LocalStorage(dir), { ...backup, level: 1.5 }, []), { code: 'INTERNAL' })
  await t.rejects(writeManifest(new LocalStorage(dir), backup, [{ path: '../x', sizeBytes: 0, sha256: sha('') }]), { code: 'INTERNAL', message: /not relative/ })
  t.throws(() => readFileSync(manifestPath(dir, backup.name)), { code: 'ENOENT' })
})
