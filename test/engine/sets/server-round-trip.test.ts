import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { startCluster, type TestCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint, testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'
import { globalsOf, schemaOf, tablespaceDir, targetFor } from './helpers.ts'

const run = promisify(execFile)

// A whole server: roles with memberships and grants, a tablespace, databases owned by roles, database settings,
// a template and an excluded database that must not be taken, and an empty `postgres` that is left out.
const source = await startCluster()
t.teardown(source.stop)
const tsDir = tablespaceDir()
t.teardown(() => rmSync(tsDir, { recursive: true, force: true }))
// one statement per call: psql -c runs a multi-statement string as one transaction, which these refuse
for (const sql of [
  "CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw'",
  'CREATE ROLE readers NOLOGIN',
  "CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE readers",
  'CREATE ROLE "Mixed Role" NOLOGIN CREATEDB',
  "ALTER ROLE alice SET statement_timeout = '5min'",
  'GRANT "Mixed Role" TO alice',
  `CREATE TABLESPACE ts_sets OWNER app_owner LOCATION '${tsDir}'`,
  'CREATE DATABASE shop OWNER app_owner',
  'CREATE DATABASE crm TABLESPACE ts_sets',
  'CREATE DATABASE scratch_tmp',
  'CREATE DATABASE tmpl_db IS_TEMPLATE true',
]) await source.psql(sql)
await source.psql(`
  SET ROLE app_owner;
  CREATE TABLE orders (id int PRIMARY KEY, item text);
  INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 300) g;
  GRANT SELECT ON orders TO readers;
  RESET ROLE;
`, 'shop')
await source.psql(`
  ALTER DATABASE crm SET work_mem = '8MB';
  CREATE TABLE contacts (id int, name text) TABLESPACE ts_sets;
  INSERT INTO contacts SELECT g, 'contact ' || g FROM generate_series(1, 200) g;
  GRANT INSERT, SELECT ON contacts TO alice;
`, 'crm')
await createSampleDatabase(source, 'Mixed Db', { rows: 500 })

const config = testConfig(source, 'postgres')
t.teardown(config.cleanup)
config.targets.default.excludeDatabases = ['scratch_*']

t.test('a whole-server set restores onto empty clusters with pgkeep and with stock tools, identical', async t => {
  const service = await openService(config)
  t.teardown(() => service.close())
  const first = await service.create({ allDatabases: true }, 'test')
  t.ok(first.set, 'the create made a set; its first member is returned')
  const set = await service.waitForSet(first.set!.id)
  t.equal(set.status, 'completed', JSON.stringify(set.error))
  t.same(set.databases, ['Mixed Db', 'crm', 'shop'], 'every database but templates, the excluded and the empty postgres, in name order')
  t.equal(set.members[0].kind, 'globals', 'the globals member comes first')
  t.match(set.members[0].name, /^default-globals-.*\.sql\.zst$/)
  t.ok(set.members.every(m => m.status === 'completed' && m.sha256 && m.set?.id === set.id), 'each member is a normal completed backup naming its set')
  t.equal(set.progress, undefined, 'no progress once ended')

  const manifest = JSON.parse(readFileSync(join(config.backupDir, `${set.name}.set.json`), 'utf8'))
  t.same(manifest.members.map((m: { kind: string, database?: string, status: string }) => [m.kind, m.database ?? null, m.status]),
    [['globals', null, 'completed'], ['database', 'Mixed Db', 'completed'], ['database', 'crm', 'completed'], ['database', 'shop', 'completed']], 'the set manifest lists its members')
  const globalsText = (await run('zstd', ['-dc', join(config.backupDir, set.members[0].name)])).stdout
  t.notMatch(globalsText, /SCRAM-SHA-256|owner-pw/, 'no role password in the globals by default')
  t.match(globalsText, /CREATE ROLE alice;/)

  // what the rebuilt servers must hold
  const expected = { globals: await globalsOf(source), schemas: new Map<string, string>(), rows: new Map<string, string>() }
  for (const db of set.databases) {
    expected.schemas.set(db, await schemaOf(source, db))
    expected.rows.set(db, await databaseFingerprint(source, db))
  }
  // the tablespace's directory is the source's until it stops; each rebuilt server takes the same path in turn
  await source.stop()
  renameSync(tsDir, `${tsDir}-source`)
  t.teardown(() => rmSync(`${tsDir}-source`, { recursive: true, force: true }))
  const freshTablespaceDir = (): void => {
    rmSync(tsDir, { recursive: true, force: true })
    mkdirSync(tsDir)
    // the rebuilt server (run as postgres when the tests run as root) must own its tablespace directory
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', tsDir])
  }

  const compare = async (t: Test, dest: TestCluster): Promise<void> => {
    t.equal(await globalsOf(dest), expected.globals, 'roles, attributes, memberships, role settings and the tablespace are identical')
    for (const db of set.databases) {
      t.equal(await schemaOf(dest, db), expected.schemas.get(db), `${db}: schema, owners and grants identical`)
      t.equal(await databaseFingerprint(dest, db), expected.rows.get(db), `${db}: rows identical`)
    }
  }

  await t.test('pgkeep restore of the set', async t => {
    freshTablespaceDir()
    const dest = await startCluster()
    t.teardown(dest.stop)
    service.config.targets.fresh = targetFor(dest, 'fresh')
    const started = await service.restoreSet(set.id, { target: 'fresh' })
    t.equal(started.status, 'running')
    const final = await service.waitForSetRestore(started.restoreId)
    t.equal(final.status, 'completed', JSON.stringify(final.error))
    t.same(final.globalsSkipped, ['role "postgres" already exists'], 'the role that was already there is left alone and reported')
    await compare(t, dest)

    await t.rejects(service.restoreSet(set.id, { target: 'fresh' }), { code: 'TARGET_NOT_EMPTY' }, 'a second restore onto the same server is refused before anything is written')
    await dest.stop()
  })

  await t.test('stock tools: psql -f globals, then pg_restore --create per database', async t => {
    freshTablespaceDir()
    const dest = await startCluster()
    t.teardown(dest.stop)
    const env = { ...process.env, PGHOST: dest.socketDir, PGPORT: String(dest.port), PGUSER: 'postgres' }
    const bin = dest.binDir
    const file = (name: string): string => join(config.backupDir, name)
    await run('bash', ['-o', 'pipefail', '-c', `zstd -dc "$F" | "${bin}/psql" -X -q -d postgres`], { env: { ...env, F: file(set.members[0].name) } })
    for (const m of set.members.slice(1)) {
      await run('bash', ['-o', 'pipefail', '-c', `zstd -dc "$F" | "${bin}/pg_restore" --create -d postgres`], { env: { ...env, F: file(m.name) } })
    }
    await compare(t, dest)
  })
})

t.test('reindex rebuilds the set from the members\' manifests', async t => {
  const service = await openService(config)
  t.teardown(() => service.close())
  const sets = service.listSets().items
  t.equal(sets.length, 1)
  rmSync(join(config.backupDir, 'registry.json'))
  await service.reindex()
  const rebuilt = service.listSets().items
  t.same(rebuilt.map(s => [s.id, s.status, s.databases]), sets.map(s => [s.id, s.status, s.databases]), 'same set, status and members')
  t.ok(existsSync(join(config.backupDir, `${sets[0].name}.set.json`)))
})
