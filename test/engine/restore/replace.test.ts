import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import t from 'tap'
import type { Backup, BackupFormat } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import { dbnameConninfo } from '../../../server/engine/pg/passfile.ts'
import { startRestore } from '../../../server/engine/restore/restore-job.ts'
import { makeBackup as backupRecord } from '../store/fixtures.ts'
import { rejection } from './fixtures.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSlowRestoreDatabase } from '../../helpers/sample-db.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'

const run = promisify(execFile)
const cluster = await testCluster()
t.teardown(cluster.stop)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-replace-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, database: 'postgres', password: cluster.password }

// partitioned tables with a primary key and a foreign key to them: pg_restore --clean over an existing copy
// stops at "cannot drop inherited constraint" with half of the constraints already dropped
await cluster.createDatabase('replace_src')
await cluster.psql(`
  CREATE TABLE q (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
  CREATE TABLE q1 PARTITION OF q FOR VALUES FROM (1) TO (100);
  CREATE TABLE q2 PARTITION OF q FOR VALUES FROM (100) TO (200);
  INSERT INTO q SELECT g, 'v' || g FROM generate_series(1, 150) g;
  CREATE TABLE refq (qid int REFERENCES q (id));
  INSERT INTO refq VALUES (5), (150);
  CREATE TABLE parent (id int CONSTRAINT positive CHECK (id > 0));
  CREATE TABLE child () INHERITS (parent);
  INSERT INTO child VALUES (1);
`, 'replace_src')

const constraints = async (db: string): Promise<number> => Number(await cluster.psql(
  "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'", dbnameConninfo(db)))
const rows = async (db: string): Promise<string> => (await cluster.psql('SELECT (SELECT count(*) FROM q) || \'/\' || (SELECT count(*) FROM refq)', dbnameConninfo(db))).trim()
const scratchDatabases = async (): Promise<string[]> =>
  // this file's databases only (all named replace..., one ü...): other files restore at the same time
  (await cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_pgkeep\\_%' AND (datname LIKE 'replace%' OR datname LIKE 'ü%') ORDER BY 1")).split('\n').filter(Boolean)

let seq = 0
async function makeBackup (db: string, format: BackupFormat): Promise<Backup> {
  const name = `replace-${++seq}.${format}`
  const f = { custom: 'c', plain: 'p', tar: 't', directory: 'd' }[format]
  await run(join(cluster.binDir, 'pg_dump'), ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', db, '-F', f, ...(format === 'custom' ? ['-Z', '0'] : []), '-f', join(dir, name)])
  return backupRecord({ name, target: 'test', database: db, format, compression: 'none', level: 0, createdBy: 'test' })
}

const sourceConstraints = await constraints('replace_src')

t.test('restoring with clean over an existing copy of partitioned tables replaces it whole', async t => {
  for (const format of ['custom', 'directory', 'tar'] as const) {
    const b = await makeBackup('replace_src', format)
    const db = `replace copy ${format}`
    await startRestore(b, new LocalStorage(dir), dir, target, { database: db, create: true }).done
    t.equal(await constraints(db), sourceConstraints, `${format}: the first restore has every constraint`)
    await cluster.psql('DELETE FROM refq; DELETE FROM q WHERE id > 10', dbnameConninfo(db))
    await startRestore(b, new LocalStorage(dir), dir, target, { database: db, clean: true }).done
    t.equal(await constraints(db), sourceConstraints, `${format}: still every constraint after clean`)
    t.equal(await rows(db), '150/2', `${format}: the rows are the backup's again`)
  }
  t.same(await scratchDatabases(), [], 'no scratch or old database is left behind')
})

// a backup whose restore fails half-way: a table owned by a role that is gone by the time it is restored
await cluster.psql('CREATE ROLE replace_gone_role', 'postgres')
await cluster.createDatabase('replace_broken_src')
await cluster.psql(`
  CREATE TABLE first_ok (id int PRIMARY KEY); INSERT INTO first_ok VALUES (1);
  CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO replace_gone_role;
`, 'replace_broken_src')
const brokenBackup = await makeBackup('replace_broken_src', 'custom')
await cluster.psql('REASSIGN OWNED BY replace_gone_role TO postgres', 'replace_broken_src')
await cluster.psql('DROP ROLE replace_gone_role')

const tables = async (db: string): Promise<string> =>
  (await cluster.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", dbnameConninfo(db))).trim()

t.test('a replace that fails half-way leaves the existing database as it was and drops its scratch database', async t => {
  const good = await makeBackup('replace_src', 'custom')
  await startRestore(good, new LocalStorage(dir), dir, target, { database: 'replace keep me', create: true }).done
  await cluster.psql('DELETE FROM refq WHERE qid > 100; DELETE FROM q WHERE id > 100', dbnameConninfo('replace keep me'))
  const logs: string[] = []
  const job = startRestore(brokenBackup, new LocalStorage(dir), dir, target, { database: 'replace keep me', clean: true })
  job.on('log', (l: string) => logs.push(l))
  const err = await rejection(job.done)
  t.equal(err.code, 'PG_RESTORE_FAILED')
  t.match(err.message, /role "replace_gone_role" does not exist/)
  t.equal(await constraints('replace keep me'), sourceConstraints, 'every constraint is still there')
  t.equal(await rows('replace keep me'), '100/1', 'and every row, as the restore found them')
  t.same(await scratchDatabases(), [], 'the scratch database was dropped')
})

t.test('a database that holds objects is refused without clean, merged into only when asked, and an empty one is restored into in one transaction', async t => {
  const b = await makeBackup('replace_src', 'custom')
  await cluster.createDatabase('replace_unrelated')
  await cluster.psql('CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (42)', 'replace_unrelated')
  const job = startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace_unrelated' })
  const refused = await rejection(job.planned)
  t.equal(refused.code, 'TARGET_NOT_EMPTY')
  t.match(refused.message, /database "replace_unrelated" on target "test" is not empty \(table keep_me\); restore with clean to replace it, or merge/)
  t.equal((await rejection(job.done)).code, 'TARGET_NOT_EMPTY', 'the job ends with the same refusal')
  t.equal(await tables('replace_unrelated'), 'keep_me', 'nothing was written')

  t.equal((await rejection(startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace_unrelated', merge: true, clean: true }).planned)).code, 'INVALID_INPUT')
  t.equal((await rejection(startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace_unrelated', create: true }).planned)).code, 'CONFLICT')
  t.equal((await rejection(startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace nowhere' }).planned)).code, 'NOT_FOUND')

  const merged = await startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace_unrelated', merge: true, jobs: 2 }).done
  t.match(merged, { mode: 'into', replaced: false })
  t.equal(await tables('replace_unrelated'), 'child,keep_me,parent,q,q1,q2,refq', 'merge adds the backup\'s objects beside what was there')

  await cluster.createDatabase('replace_empty')
  const failed = await rejection(startRestore(brokenBackup, new LocalStorage(dir), dir, target, { database: 'replace_empty' }).done)
  t.equal(failed.code, 'PG_RESTORE_FAILED')
  t.equal(await tables('replace_empty'), '', 'a failed restore into an existing database is rolled back: no first_ok')
  const into = await startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace_empty' }).done
  t.match(into, { mode: 'into', replaced: false })
  t.equal(await rows('replace_empty'), '150/2')
  t.same(await scratchDatabases(), [])
})

t.test('create and clean carry the dumped database\'s owner, settings, comment and privileges, whatever the names', async t => {
  const src = 'replace "settings" src'
  const q = (n: string): string => `"${n.replace(/"/g, '""')}"`
  await cluster.psql('CREATE ROLE "replace app"; CREATE ROLE replace_reader')
  await cluster.createDatabase(src)
  for (const sql of [
    `ALTER DATABASE ${q(src)} OWNER TO "replace app"`,
    `ALTER DATABASE ${q(src)} SET search_path TO a, public`,
    `ALTER ROLE replace_reader IN DATABASE ${q(src)} SET work_mem TO '8MB'`,
    `COMMENT ON DATABASE ${q(src)} IS 'kept
ALTER DATABASE ${q(src)} is text, not a statement'`,
    `GRANT CREATE ON DATABASE ${q(src)} TO replace_reader`,
  ]) await cluster.psql(sql)
  await cluster.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1)', dbnameConninfo(src))
  const custom = await makeBackup(src, 'custom')
  await run('zstd', ['-q', '--rm', join(dir, custom.name)])
  const zstd: Backup = { ...custom, name: `${custom.name}.zst`, compression: 'zstd' }
  const directory = await makeBackup(src, 'directory')

  const describe = async (db: string): Promise<string> => (await cluster.psql(`
    SELECT pg_get_userbyid(d.datdba) || ' | ' || coalesce(shobj_description(d.oid, 'pg_database'), '-') || ' | ' ||
      (SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY r.rolname NULLS FIRST)
         FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) || ' | ' ||
      (SELECT bool_or(a.grantee = 'replace_reader'::regrole AND a.privilege_type = 'CREATE') FROM aclexplode(d.datacl) a)
    FROM pg_database d WHERE d.datname = '${db.replace(/'/g, "''")}'`)).trim()
  const expected = await describe(src)
  t.match(expected, /^replace app \| kept\nALTER DATABASE .* \| \*:search_path=a, public;replace_reader:work_mem=8MB \| true$/)

  // a name of 63 bytes with multibyte characters: the scratch name is cut to fit, on a character boundary
  const long = 'ü'.repeat(20) + '"q" = x' + 'y'.repeat(16)
  t.equal(Buffer.byteLength(long), 63)
  for (const [b, db] of [[zstd, 'replace "settings" copy=1'], [directory, long]] as const) {
    const created = await startRestore(b, new LocalStorage(dir), dir, target, { database: db, create: true }).done
    t.match(created, { mode: 'new', replaced: false })
    t.equal(await describe(db), expected, `${b.format}/${b.compression}: created like the dumped database`)
    await cluster.psql(`ALTER DATABASE ${q(db)} RESET search_path`)
    const replaced = await startRestore(b, new LocalStorage(dir), dir, target, { database: db, clean: true }).done
    t.match(replaced, { mode: 'replace', replaced: true })
    t.equal(await describe(db), expected, `${b.format}: replaced by the dumped database, settings and all`)
    t.equal((await cluster.psql('SELECT count(*) FROM t', dbnameConninfo(db))).trim(), '1')
  }
  t.same(await scratchDatabases(), [])
})

// its restore lasts seconds (every row passes a sleeping CHECK): long enough to act while it copies
await createSlowRestoreDatabase(cluster, 'replace_slowsrc', 3000)
const slowBackup = await makeBackup('replace_slowsrc', 'custom')
const copyingFor = async (job: { id: string }): Promise<boolean> => Number(await cluster.psql(
  `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-restore-${job.id}' AND query LIKE 'COPY%'`)) > 0

t.test('cancelling a replace leaves the existing database as it was and drops the scratch database', async t => {
  const b = slowBackup
  await cluster.createDatabase('replace cancel me')
  await cluster.psql('CREATE TABLE marker (x int); INSERT INTO marker VALUES (7)', dbnameConninfo('replace cancel me'))
  const job = startRestore(b, new LocalStorage(dir), dir, target, { database: 'replace cancel me', clean: true }, { cancelGraceMs: 2000 })
  let settled = false
  job.done.catch(() => {}).finally(() => { settled = true })
  while (!settled && !await copyingFor(job)) await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(settled, false, 'still copying into the scratch database when cancelled')
  await job.cancel()
  t.equal((await rejection(job.done)).code, 'CANCELLED')
  t.equal(await tables('replace cancel me'), 'marker', 'the database being replaced is untouched')
  t.same(await scratchDatabases(), [], 'the scratch database was dropped')
})

t.test('a database in use is not replaced: refused up front, or at the swap when a session came meanwhile', async t => {
  await cluster.createDatabase('replace in use')
  await cluster.psql('CREATE TABLE marker (x int)', dbnameConninfo('replace in use'))
  const session = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'replace in use' })
  await session.connect()
  const refused = await rejection(startRestore(slowBackup, new LocalStorage(dir), dir, target, { database: 'replace in use', clean: true }).planned)
  t.equal(refused.code, 'CONFLICT')
  t.match(refused.message, /database "replace in use" on target "test" is in use by 1 other session; disconnect them before replacing it/)
  await session.end()

  const job = startRestore(slowBackup, new LocalStorage(dir), dir, target, { database: 'replace in use', clean: true })
  await job.planned
  while (!await copyingFor(job)) await new Promise(resolve => setTimeout(resolve, 50))
  const late = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: 'replace in use' })
  await late.connect()
  t.teardown(() => late.end())
  const err = await rejection(job.done)
  t.equal(err.code, 'CONFLICT')
  t.match(err.message, /"replace in use" on target "test" is in use by other sessions; disconnect them and restore again/)
  t.equal(await tables('replace in use'), 'marker', 'the database in use is untouched')
  t.same(await scratchDatabases(), [], 'the restored scratch database was dropped')
})
