import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../../server/config.ts'
import { settingsFor } from '../../../server/engine/drill/drill-service.ts'
import { manifestPath } from '../../../server/engine/store/manifest.ts'
import type { BackupFormat } from '../../../schemas/backup.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'
import { leftDrillDatabases } from '../../helpers/drill-databases.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'drill_src', { rows: 500 })
await cluster.psql(`
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN positive AS int CHECK (VALUE > 0);
  CREATE TABLE public.people (id positive PRIMARY KEY, m mood);
  INSERT INTO public.people VALUES (1, 'ok'), (2, 'happy');
  CREATE FUNCTION public.mood_of(p positive, fallback mood DEFAULT 'ok') RETURNS mood LANGUAGE sql AS $$ SELECT coalesce((SELECT m FROM public.people WHERE id = p), fallback) $$;
  CREATE MATERIALIZED VIEW public.order_totals AS SELECT customer, sum(amount) AS total FROM public.orders GROUP BY 1;
  CREATE INDEX orders_customer ON public.orders (customer);
`, 'drill_src')
const config = testConfig(cluster, 'drill_src', {})
t.teardown(config.cleanup)

const drillDatabases = async (): Promise<string[]> => await leftDrillDatabases(cluster, config.backupDir)

const service = await openService(config)
t.teardown(() => service.close())

for (const format of ['custom', 'plain', 'tar', 'directory'] as BackupFormat[]) {
  t.test(`a ${format} backup drills ok with every check listed, and leaves no scratch database`, async t => {
    const backup = await service.waitFor((await service.create({ format, countRows: true }, 'test')).id)
    t.equal(backup.status, 'completed')
    t.ok(backup.rowCounts?.some(r => r.table === '"public"."orders"' && r.rows === 500), 'rows counted in the dump snapshot')
    const started = await service.drills.start({ backupId: backup.id }, 'test')
    t.equal(started.status, 'running')
    t.match(started.database, /^pgkeep_drill_[0-9a-f]{8}$/)
    const drill = await service.drills.waitFor(started.id)
    t.equal(drill.status, 'passed', JSON.stringify(drill.checks.filter(c => !c.ok)))
    t.same(drill.checks.map(c => c.kind), ['restore', 'objects', 'rowCounts'])
    t.ok(drill.checks.every(c => c.ok))
    t.ok((drill.checks[1].checked ?? 0) > 10, `objects checked: ${drill.checks[1].checked}`)
    t.equal(drill.checks[2].estimate, false)
    t.ok((drill.restoreMs ?? 0) > 0)
    t.same(await drillDatabases(), [])
    const after = service.get(backup.id)
    t.match(after.drill, { id: drill.id, ok: true })
    const manifest = JSON.parse(readFileSync(manifestPath(config.backupDir, backup.name), 'utf8'))
    t.match(manifest.backup.drill, { id: drill.id, ok: true }, 'the manifest carries it too: a rebuilt catalog keeps it')
  })
}

/** Rewrites a stored plain backup and every checksum that covers it (manifest and registry), as an attacker or a bug would. */
async function alterStored (name: string, edit: (sql: string) => string): Promise<void> {
  const file = join(config.backupDir, name)
  const altered = edit(readFileSync(file, 'utf8'))
  writeFileSync(file, altered)
  const sha256 = createHash('sha256').update(altered).digest('hex')
  const sizeBytes = Buffer.byteLength(altered)
  const manifestFile = manifestPath(config.backupDir, name)
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'))
  manifest.files[0] = { ...manifest.files[0], sha256, sizeBytes }
  Object.assign(manifest.backup, { sha256, sizeBytes, rawBytes: sizeBytes })
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2))
  const registryFile = join(config.backupDir, 'registry.json')
  const registry = JSON.parse(readFileSync(registryFile, 'utf8'))
  for (const b of registry.backups) if (b.name === name) Object.assign(b, { sha256, sizeBytes, rawBytes: sizeBytes })
  writeFileSync(registryFile, JSON.stringify(registry, null, 2))
  await service.registry.reload()
}

t.test('a backup whose data was altered but whose checksums were rewritten to match passes validate and fails the drill on row counts', async t => {
  const backup = await service.waitFor((await service.create({ format: 'plain', compression: 'none', countRows: true }, 'test')).id)
  // one row of orders taken out of its COPY block
  await alterStored(backup.name, sql => sql.replace(/(COPY public\.orders [^\n]*\n)[^\n]*\n/, '$1'))
  t.equal((await service.validate(backup.id)).verification?.ok, true, 'checksums and structure still pass')
  const drill = await service.drills.waitFor((await service.drills.start({ backupId: backup.id }, 'test')).id)
  t.equal(drill.status, 'failed')
  const rows = drill.checks.find(c => c.kind === 'rowCounts')
  t.match(rows, { ok: false, estimate: false, mismatches: [{ table: '"public"."orders"', expected: 500, actual: 499 }] })
  t.ok(drill.checks.find(c => c.kind === 'restore')?.ok, 'the restore itself went through')
  t.match(service.get(backup.id).drill, { id: drill.id, ok: false, message: /rowCounts/ })
  t.same(await drillDatabases(), [])
})

t.test('without recorded counts rows are compared with the source estimates, and the check says it is an estimate', async t => {
  const backup = await service.waitFor((await service.create({ format: 'custom' }, 'test')).id)
  const drill = await service.drills.waitFor((await service.drills.start({ target: 'default' }, 'test')).id)
  t.equal(drill.backupId, backup.id, 'the newest completed backup of the target')
  t.equal(drill.status, 'passed')
  t.match(drill.checks.find(c => c.kind === 'rowCounts'), { ok: true, estimate: true, message: /^estimate: / })
})

t.test('an assertion that fails fails the drill; one that holds passes; a slow one meets the statement timeout', async t => {
  const settings = { ...settingsFor(config, 'default')!, statementTimeoutMs: 200 }
  const withAssertions = {
    ...config,
    drill: {
      default: {
        ...settings,
        assertions: [
          { name: 'orders exist', sql: 'SELECT count(*) > 0 FROM public.orders' },
          { name: 'five hundred orders', sql: 'SELECT count(*) FROM public.orders', expect: 500 },
          { name: 'recent orders', sql: "SELECT count(*) > 0 FROM public.orders WHERE created_at > now() + interval '1 day'", expect: true },
          { name: 'slow', sql: 'SELECT pg_sleep(5) IS NULL' },
        ],
      },
    },
  }
  const other = await openService(withAssertions)
  t.teardown(() => other.close())
  await other.waitFor((await other.create({ format: 'custom' }, 'test')).id)
  const drill = await other.drills.waitFor((await other.drills.start({}, 'test')).id)
  t.equal(drill.status, 'failed')
  const byName = Object.fromEntries(drill.checks.filter(c => c.kind === 'assertion').map(c => [c.name, c]))
  t.match(byName['orders exist'], { ok: true, actual: 'true' })
  t.match(byName['five hundred orders'], { ok: true, actual: '500' })
  t.match(byName['recent orders'], { ok: false, actual: 'false', expected: 'true', message: 'returned false, expected true' })
  t.match(byName.slow, { ok: false, message: /statement timeout/ })
  t.same(await drillDatabases(), [])
})

t.test('two drills at once do not collide', async t => {
  const backup = await service.waitFor((await service.create({ format: 'custom', countRows: true }, 'test')).id)
  const [a, b] = await Promise.all([service.drills.start({ backupId: backup.id }, 'test'), service.drills.start({ backupId: backup.id }, 'test')])
  t.not(a.database, b.database)
  const [da, db] = await Promise.all([service.drills.waitFor(a.id), service.drills.waitFor(b.id)])
  t.equal(da.status, 'passed')
  t.equal(db.status, 'passed')
  t.same(await drillDatabases(), [])
  const history = await service.drills.list({ backupId: backup.id })
  t.same(history.map(d => d.id).sort(), [a.id, b.id].sort())
})

t.test('bad requests are refused before anything is made', async t => {
  await t.rejects(service.drills.start({ backupId: '01936f6e-0000-7000-8000-000000000000' }, 'test'), { code: 'NOT_FOUND' })
  await t.rejects(service.drills.start({ target: 'nope' }, 'test'), { code: 'INVALID_INPUT', message: /unknown target "nope"/ })
  const failed = await service.waitFor((await service.create({ format: 'custom', schemas: ['no_such_schema'] }, 'test')).id)
  t.equal(failed.status, 'failed')
  await t.rejects(service.drills.start({ backupId: failed.id }, 'test'), { code: 'INVALID_STATE', message: /only completed backups can be drilled/ })
  await t.rejects(service.drills.get('01936f6e-0000-7000-8000-000000000000'), { code: 'NOT_FOUND' })
  t.same(await drillDatabases(), [])
})

t.test('a bad assertion in the config stops the start with the field named', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-drill-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const load = (file: unknown): unknown => {
    writeFileSync(join(dir, 'c.json'), JSON.stringify(file))
    return loadConfig({ PGKEEP_CONFIG: join(dir, 'c.json'), DATABASE_URL: cluster.url('drill_src') })
  }
  t.throws(() => load({ drill: { assertions: [{ name: 'x', sql: '' }] } }), { code: 'CONFIG_INVALID', message: /drill\.assertions/ })
  t.throws(() => load({ drill: { assertions: [{ name: 'x', sql: 'select 1' }, { name: 'x', sql: 'select 2' }] } }), { code: 'CONFIG_INVALID', message: /drill\.assertions\[1\]\.name: "x" is used by an earlier assertion/ })
  t.throws(() => load({ drills: [{ target: 'nope', cron: '0 3 * * *' }] }), { code: 'CONFIG_INVALID', message: /drills\[0\]\.target: unknown target "nope"/ })
  t.throws(() => load({ drills: [{ target: 'default', cron: 'every day' }] }), { code: 'CONFIG_INVALID', message: /drills\[0\]\.cron/ })
  const ok = load({ drill: { url: 'postgres://drill@elsewhere:5433/postgres', assertions: [{ name: 'x', sql: 'select true' }] } }) as ReturnType<typeof loadConfig>
  t.match(ok.drill?.default, { ownServer: true, server: { host: 'elsewhere', port: 5433, user: 'drill' }, assertions: [{ name: 'x' }] })
})
