import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listPgTools, newestTool } from '../../../server/engine/pg/tools.ts'

/** A directory with a `pg_dump` that only answers --version as `version` would: several installed clients, side by side. */
function clientDir (root: string, name: string, version: string | undefined): string {
  const dir = join(root, name)
  mkdirSync(dir)
  // the only thing pgkeep asks a client before using it; a real second client of another major is not on this machine
  const answer = version === undefined ? 'exit 1' : `echo "pg_dump (PostgreSQL) ${version}"`
  writeFileSync(join(dir, 'pg_dump'), `#!/bin/sh\n${answer}\n`)
  chmodSync(join(dir, 'pg_dump'), 0o755)
  return dir
}

t.test('every installed pg_dump is found with its version, broken ones skipped, and the newest is the one pgkeep uses', async t => {
  const root = mkdtempSync(join(tmpdir(), 'pgkeep-tools-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const path = [clientDir(root, 'a', '13.9'), clientDir(root, 'broken', undefined), clientDir(root, 'b', '17.2 (Debian 17.2-1.pgdg120+1)'), clientDir(root, 'c', '16.6')].join(':')
  const found = await listPgTools('pg_dump', undefined, path)
  const onPath = found.filter(f => f.path.startsWith(root))
  t.same(onPath.map(f => [f.version, f.major]), [['13.9', 13], ['17.2', 17], ['16.6', 16]], 'in the order looked at; the broken one skipped')
  t.match(newestTool(onPath), { version: '17.2', path: join(root, 'b', 'pg_dump') }, 'the newest major wins, wherever it is')
  t.match(newestTool([...onPath, { path: '/later/pg_dump', version: '17.0', major: 17 }]), { version: '17.2' }, 'the first of the newest major')
  t.equal(newestTool([]), undefined)
  t.same((await listPgTools('pg_dump', join(root, 'c'))).map(f => f.version), ['16.6'], 'with a bin dir, only what is there')
})
