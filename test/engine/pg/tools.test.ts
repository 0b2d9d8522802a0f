import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listPgTools, newestTool } from '../../../server/engine/pg/tools.ts'
import { toolVersionsFile } from '../../../server/engine/pg/tool-versions.ts'

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

t.test('a tool\'s version is asked once and kept between processes, until the binary changes', async t => {
  const root = mkdtempSync(join(tmpdir(), 'pgkeep-tools-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const asked = join(root, 'asked')
  const dir = join(root, 'bin')
  mkdirSync(dir)
  // counts every --version it answers: what the cache saves is exactly these runs
  const install = (version: string): void => {
    writeFileSync(join(dir, 'pg_dump'), `#!/bin/sh\necho x >> ${asked}\necho "pg_dump (PostgreSQL) ${version}"\n`)
    chmodSync(join(dir, 'pg_dump'), 0o755)
  }
  const runs = (): number => (existsSync(asked) ? readFileSync(asked, 'utf8').split('\n').filter(Boolean).length : 0)
  const versionsFile = toolVersionsFile(join(root, 'backups'))
  install('15.8')

  t.same((await listPgTools('pg_dump', dir, undefined, { versionsFile })).map(f => f.version), ['15.8'])
  t.equal(runs(), 1)
  t.equal(statSync(versionsFile).mode & 0o777, 0o600, 'kept in the backups dir\'s private .pgkeep, owner-only')
  t.same((await listPgTools('pg_dump', dir, undefined, { versionsFile })).map(f => [f.version, f.major]), [['15.8', 15]], 'the same answer')
  t.equal(runs(), 1, 'without running it again')
  t.equal((await listPgTools('pg_dump', dir)).length, 1)
  t.equal(runs(), 2, 'nothing is kept without a versions file')

  install('16.4 (Debian 16.4-1)')
  t.same((await listPgTools('pg_dump', dir, undefined, { versionsFile })).map(f => f.version), ['16.4'], 'an upgraded binary is asked again')
  t.equal(runs(), 3)

  writeFileSync(versionsFile, '{ damaged')
  t.same((await listPgTools('pg_dump', dir, undefined, { versionsFile })).map(f => f.version), ['16.4'], 'a damaged file is only a miss')
  t.equal(runs(), 4)
  await listPgTools('pg_dump', dir, undefined, { versionsFile })
  t.equal(runs(), 4, 'and is written afresh')
})
