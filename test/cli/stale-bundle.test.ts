import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// A bundle older than the sources (an edit, a git checkout or pull since the last build) made bin/pgkeep.js fall
// back to compiling the TypeScript through tsx, several times slower to start, without a word. It says so now.
// Checked in a copy of the checkout, so the tree the other test files run from is never touched.
const root = fileURLToPath(new URL('../..', import.meta.url))
const copy = mkdtempSync(join(tmpdir(), 'pgkeep-stale-'))
t.teardown(() => rmSync(copy, { recursive: true, force: true }))
for (const entry of ['bin', 'dist/cli', 'server', 'schemas', 'package.json']) cpSync(join(root, entry), join(copy, entry), { recursive: true })
symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))

const help = (): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [join(copy, 'bin/pgkeep.js'), '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: copy } })
const past = new Date(Date.now() - 3600_000)
const later = new Date(Date.now() + 3600_000)

t.test('a bundle newer than its sources starts quietly from the bundle', async t => {
  utimesSync(join(copy, 'dist/cli/main.js'), later, later)
  const r = help()
  t.equal(r.status, 0)
  t.match(r.stdout, /^Usage: pgkeep <command>/)
  t.equal(r.stderr, '')
})

t.test('a source newer than the bundle: the CLI still works, from the sources, and says why it starts slowly', async t => {
  utimesSync(join(copy, 'dist/cli/main.js'), past, past)
  const r = help()
  t.equal(r.status, 0)
  t.match(r.stdout, /^Usage: pgkeep <command>/)
  t.match(r.stderr, /^pgkeep: dist\/cli is missing or older than server\/ or schemas\/; running from the TypeScript sources \(slow start\): `npm run build` rebuilds it\n$/)
})
