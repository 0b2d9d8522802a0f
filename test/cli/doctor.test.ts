import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { memoryIO, runCli } from './cli-runner.ts'
import { newAgeKey } from '../helpers/age-keys.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-doctor-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('doctor on a healthy setup prints one ok line per check and exits 0', async t => {
  const r = await runCli(['doctor'], { DATABASE_URL: cluster.url(), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir })
  t.equal(r.code, 0, r.stdout + r.stderr)
  for (const check of ['pg_dump', 'pg_restore', 'psql', 'zstd', 'target default', 'backups dir', 'free space']) {
    t.match(r.stdout, new RegExp(`^ok {4}${check} `, 'm'), check)
  }
  t.notMatch(r.stdout, /FAIL/)
  t.notOk(r.stdout.includes(cluster.password), 'the password is not printed')
})

t.test('doctor with an unreachable target marks it FAIL and exits 1; --json says which', async t => {
  const io = memoryIO({ DATABASE_URL: 'postgres://postgres:pw@127.0.0.1:1/postgres', PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir, PATH: process.env.PATH })
  t.equal(await dispatch(['doctor', '--json'], io), 1)
  const report = JSON.parse(io.out()) as { ok: boolean, checks: { name: string, ok: boolean, detail: string }[] }
  t.equal(report.ok, false)
  t.same(report.checks.filter(c => !c.ok).map(c => c.name), ['target default'])
  t.match(report.checks.find(c => c.name === 'target default')?.detail, /127\.0\.0\.1:1/)
})

t.test('doctor fails the free space check when less than minFreeBytes is free', async t => {
  const cfg = join(dir, 'pgkeep.json')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(cfg, JSON.stringify({ minFreeBytes: Number.MAX_SAFE_INTEGER }))
  const io = memoryIO({ DATABASE_URL: cluster.url(), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir, PGKEEP_CONFIG: cfg, PATH: process.env.PATH })
  t.equal(await dispatch(['doctor'], io), 1)
  t.match(io.out(), /^FAIL {2}free space /m)
})

t.test('doctor checks age and the keys when encryption is configured: a rotated-away identity is a note, not a failure', async t => {
  const keys = ['current', 'previous'].map(name => newAgeKey(dir, name))
  const env = { DATABASE_URL: cluster.url(), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir, PGKEEP_AGE_RECIPIENTS: keys[0].recipient }
  const matching = await runCli(['doctor'], { ...env, PGKEEP_AGE_IDENTITY_FILE: keys[0].identity })
  t.equal(matching.code, 0, matching.stdout + matching.stderr)
  t.match(matching.stdout, /^ok {4}age +\d+\.\d+/m)
  t.match(matching.stdout, new RegExp(`^ok {4}encryption +new backups encrypted to 1 age recipient; the identity file ${keys[0].identity} opens them`, 'm'))
  const rotated = await runCli(['doctor'], { ...env, PGKEEP_AGE_IDENTITY_FILE: keys[1].identity })
  t.equal(rotated.code, 0)
  t.match(rotated.stdout, /^ok {4}encryption .*is not among the configured recipients: new backups will not decrypt with it/m)
  t.notMatch(matching.stdout + rotated.stdout, /AGE-SECRET-KEY/, 'no private key printed')
})
