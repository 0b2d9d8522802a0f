import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { checkHealth } from '../../server/engine/health.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

function config (t: Test, patch: Record<string, unknown> = {}): ReturnType<typeof testConfig> {
  const c = { ...testConfig(cluster, 'postgres'), minFreeBytes: 0, ...patch }
  t.teardown(c.cleanup)
  return c
}

/** A bin dir whose pg_dump claims an old major: a real one cannot be made older than it is. */
function oldPgDumpDir (major: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-old-pg-dump-'))
  writeFileSync(join(dir, 'pg_dump'), `#!/bin/sh\necho "pg_dump (PostgreSQL) ${major}.0"\n`)
  chmodSync(join(dir, 'pg_dump'), 0o755)
  return dir
}

t.test('a healthy setup reports every tool with its version, the server version of each target, a writable dir with room', async t => {
  const report = await checkHealth(config(t), { tools: ['pg_restore', 'psql', 'zstd'] })
  t.same(report.tools.map(x => [x.name, x.ok]), [['pg_dump', true], ['pg_restore', true], ['psql', true], ['zstd', true]])
  for (const tool of report.tools) t.match(tool, { version: /^\d+(\.\d+)*$/, path: /\S/ }, tool.name)
  t.match(report.targets, [{ name: 'default', ok: true, server: { version: /^\d+\.\d+$/, major: Number } }])
  t.same(report.backupDir.writable, { ok: true })
  t.match(report.backupDir.freeSpace, { ok: true, freeBytes: Number, minFreeBytes: 0 })
})

t.test('only pg_dump is looked for unless other tools are asked for', async t => {
  const report = await checkHealth(config(t))
  t.same(report.tools.map(x => x.name), ['pg_dump'])
})

t.test('a target newer than pg_dump fails with the dump compatibility rule and keeps the server version', async t => {
  const binDir = oldPgDumpDir(9)
  t.teardown(() => rmSync(binDir, { recursive: true, force: true }))
  const report = await checkHealth(config(t, { pgBinDir: binDir }))
  t.match(report.tools[0], { name: 'pg_dump', ok: true, version: '9.0' })
  const [target] = report.targets
  t.equal(target.ok, false)
  t.match(target, { server: { major: Number }, error: { code: 'PG_VERSION_MISMATCH', message: /pg_dump cannot dump a newer server/ } })
})

t.test('without pg_dump neither the tool nor any target is healthy', async t => {
  const empty = mkdtempSync(join(tmpdir(), 'pgkeep-no-tools-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const report = await checkHealth(config(t, { pgBinDir: empty }))
  t.match(report.tools, [{ name: 'pg_dump', ok: false, error: { code: 'TOOL_MISSING' } }])
  t.match(report.targets, [{ name: 'default', ok: false, server: { major: Number }, error: { code: 'TOOL_MISSING' } }])
})

t.test('an unreachable target says why, and no server version', async t => {
  const c = config(t)
  c.targets = { default: { ...c.targets.default, host: '127.0.0.1', port: 1 } }
  const [target] = (await checkHealth(c)).targets
  t.match(target, { ok: false, error: { code: 'PG_CONNECTION_FAILED', message: /127\.0\.0\.1:1/ } })
  t.notOk('server' in target)
  t.notMatch(JSON.stringify(target), cluster.password)
})

t.test('too little free space fails the free space probe with the numbers', async t => {
  const report = await checkHealth(config(t, { minFreeBytes: Number.MAX_SAFE_INTEGER }))
  t.match(report.backupDir.freeSpace, { ok: false, freeBytes: Number, minFreeBytes: Number.MAX_SAFE_INTEGER })
})

t.test('a missing backups dir is not writable unless the caller asks for it to be created', async t => {
  const c = config(t)
  const missing = join(c.backupDir, 'not', 'yet')
  const without = await checkHealth({ ...c, backupDir: missing })
  t.match(without.backupDir.writable, { ok: false, error: { cause: { code: 'ENOENT' } } })
  t.notOk(existsSync(missing))
  const created = await checkHealth({ ...c, backupDir: missing }, { createBackupDir: true })
  t.same(created.backupDir.writable, { ok: true })
  t.ok(existsSync(missing))
})
