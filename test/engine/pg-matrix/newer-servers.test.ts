import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Backup } from '../../../schemas/backup.ts'
import { loadConfig, type Config } from '../../../server/config.ts'
import { PgkeepError } from '../../../server/errors.ts'
import { checkHealth } from '../../../server/engine/health.ts'
import { checkReadiness } from '../../../server/http/readiness.ts'
import { runCli } from '../../cli/cli-runner.ts'
import { MATRIX_MAJORS, newestInstalledPgDump, startVersionedCluster, type VersionedCluster } from '../../helpers/pg-versions.ts'
import { openService } from '../../helpers/service.ts'

/**
 * The compatibility matrix, part two: a server newer than every installed pg_dump cannot be dumped, and pgkeep
 * must say so everywhere before writing anything: create (PG_VERSION_MISMATCH), doctor and readiness. pgkeep
 * finds pg_dump on its own here (no pgBinDir), as an admin's install would.
 *
 * The wording is matched loosely: it names the server's major, the pg_dump it has, and the Debian/PGDG package
 * that would fix it (postgresql-client-<major>).
 */
const newestPgDump = newestInstalledPgDump()
const majors = MATRIX_MAJORS.filter(m => m > newestPgDump)
if (majors.length === 0) t.comment(`every matrix server is dumpable with the installed pg_dump ${newestPgDump}: nothing to refuse`)

const DB = 'pgmatrix_newer'
const started = Date.now()
const clusters: VersionedCluster[] = await Promise.all(majors.map(startVersionedCluster))
for (const c of clusters) t.teardown(c.stop)
t.comment(`started ${clusters.map(c => c.serverVersion).join(', ')} in ${Date.now() - started} ms`)
await Promise.all(clusters.map(async c => {
  await c.createDatabase(DB)
  await c.psql('CREATE TABLE public.items (id int PRIMARY KEY, note text); INSERT INTO public.items SELECT g, md5(g::text) FROM generate_series(1, 100) g', DB)
}))

const targetName = (c: VersionedCluster): string => `pg${c.major}`

/** One config naming every newer server as a target, without pgBinDir. */
function matrixConfig (): Config & { env: Record<string, string>, cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'pgkeep-matrix-newer-'))
  const backupDir = join(root, 'backups')
  const configFile = join(root, 'pgkeep.json')
  writeFileSync(configFile, JSON.stringify({ targets: Object.fromEntries(clusters.map(c => [targetName(c), { url: c.url(DB) }])) }), { mode: 0o600 })
  const env = { PGKEEP_BACKUP_DIR: backupDir, PGKEEP_CONFIG: configFile }
  const config = loadConfig({ PATH: process.env.PATH, ...env })
  return { ...config, env, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

function saysWhatToInstall (t: Test, message: string | undefined, major: number, what: string): void {
  t.match(message, new RegExp(`PostgreSQL ${major}\\b`), `${what} names the server's PostgreSQL ${major}`)
  t.match(message, new RegExp(`pg_dump\\b.*\\b${newestPgDump}\\b`), `${what} names pg_dump ${newestPgDump}`)
  t.match(message, new RegExp(`postgresql-client-${major}\\b`), `${what} says to install postgresql-client-${major}`)
}

const config = matrixConfig()
t.teardown(config.cleanup)

for (const cluster of clusters) {
  t.test(`PostgreSQL ${cluster.serverVersion}: create fails with PG_VERSION_MISMATCH before any file is written`, async t => {
    const service = await openService(config)
    t.teardown(() => service.close({ cancelRunning: true }))
    // refused by create itself or by the job, before it writes: both are fine, as long as nothing is written
    const outcome: Backup | Error = await service.create({ target: targetName(cluster) }, 'test').then(
      async b => await service.waitFor(b.id),
      (err: unknown) => err instanceof Error ? err : new Error(String(err)))
    let error: { code?: string, message?: string } | undefined
    if (outcome instanceof PgkeepError) {
      error = outcome
    } else if (outcome instanceof Error) {
      throw outcome
    } else {
      t.equal(outcome.status, 'failed', 'the job fails')
      error = outcome.error
    }
    t.equal(error?.code, 'PG_VERSION_MISMATCH', error?.message ?? 'no error')
    saysWhatToInstall(t, error?.message, cluster.major, 'the error')
    // the catalog (registry.json, .pgkeep/) records the failed backup; nothing else may be there
    const written = readdirSync(config.backupDir).filter(f => f !== '.pgkeep' && !f.startsWith('registry.json'))
    t.same(written, [], 'no partial, no backup file, no manifest')
  })
}

t.test('checkHealth and readiness report every newer target as not dumpable, in the same words', { skip: majors.length === 0 }, async t => {
  const report = await checkHealth(config)
  const ready = await checkReadiness(config)
  t.equal(ready.ready, false)
  for (const cluster of clusters) {
    const name = targetName(cluster)
    const health = report.targets.find(x => x.name === name)
    t.equal(health?.ok, false, `${name} is not healthy`)
    if (health !== undefined && !health.ok) {
      t.equal(health.error.code, 'PG_VERSION_MISMATCH')
      t.equal(health.server?.major, cluster.major, 'the server answered and its version is kept')
      saysWhatToInstall(t, health.error.message, cluster.major, 'checkHealth')
    }
    const check = ready.checks.find(c => c.name === `target:${name}`)
    t.equal(check?.ok, false, `readiness check target:${name} fails`)
    saysWhatToInstall(t, check?.message, cluster.major, 'readiness')
  }
})

t.test('pgkeep doctor marks every newer target FAIL with the fix and exits 1', { skip: majors.length === 0 }, async t => {
  const r = await runCli(['doctor'], config.env)
  t.equal(r.code, 1, r.stdout + r.stderr)
  for (const cluster of clusters) {
    const line = r.stdout.split('\n').find(l => l.startsWith('FAIL') && l.includes(`target ${targetName(cluster)} `))
    t.ok(line, `a FAIL line for target ${targetName(cluster)}`)
    saysWhatToInstall(t, line, cluster.major, 'doctor')
  }
  t.notOk(r.stdout.includes(clusters[0]?.password ?? '\0'), 'the password is not printed')
})
