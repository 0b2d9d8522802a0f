import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import type { Backup, BackupFormat, Compression } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import { classifyRestoreFailure } from '../../../server/engine/restore/command.ts'
import { dbnameConninfo } from '../../../server/engine/pg/passfile.ts'
import { startRestore, type RestoreProgress } from '../../../server/engine/restore/restore-job.ts'
import { makeBackup as backupRecord } from '../store/fixtures.ts'
import { rejection } from './fixtures.ts'
import { testCluster, type TestCluster } from '../../helpers/pg-cluster.ts'
import { createSlowRestoreDatabase } from '../../helpers/sample-db.ts'
import { LocalStorage } from '../../../server/engine/storage/local-storage.ts'

const run = promisify(execFile)

const cluster: TestCluster = await testCluster()
t.teardown(cluster.stop)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-restore-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, database: 'postgres', password: cluster.password }

await cluster.createDatabase('restore_src')
await cluster.psql(`
  CREATE TABLE items (id int PRIMARY KEY, label text, payload text, at timestamptz DEFAULT '2024-01-01');
  INSERT INTO items SELECT g, 'item ' || g, md5(g::text) FROM generate_series(1, 5000) g;
  CREATE SCHEMA "Ünïcode sch";
  CREATE TABLE "Ünïcode sch"."tbl ""q""" ("çolumn" text, n numeric);
  INSERT INTO "Ünïcode sch"."tbl ""q""" SELECT 'ñ ' || g || ' "quoted" ☃', g / 7.0 FROM generate_series(1, 300) g;
  CREATE INDEX ON "Ünïcode sch"."tbl ""q""" (n);
  CREATE VIEW item_labels AS SELECT label FROM items;
`, 'restore_src')

/** Row count and a content checksum for every user table, keyed by its quoted name (one query: query_to_xml runs the per-table SQL). */
async function fingerprint (db: string): Promise<Record<string, string>> {
  const rows = await cluster.psql(`SELECT format('%I.%I', schemaname, tablename) || E'\\t' || (xpath('/row/c/text()', query_to_xml(format(
      'SELECT count(*) || '' '' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), ''-'') AS c FROM %I.%I t',
      schemaname, tablename), false, true, '')))[1]::text
    FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`, dbnameConninfo(db))
  return Object.fromEntries(rows.split('\n').filter(Boolean).map(l => l.split('\t')))
}

const source = await fingerprint('restore_src')

/** Single files come from pg_dump's stdout, as pgkeep writes them: a custom archive then has no data offsets. */
async function pgDump (db: string, format: BackupFormat, out: string): Promise<void> {
  const f = { custom: 'c', plain: 'p', tar: 't', directory: 'd' }[format]
  const args = ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', db, '-F', f]
  if (format === 'directory') { await run(join(cluster.binDir, 'pg_dump'), [...args, '-f', out]); return }
  const { stdout } = await run(join(cluster.binDir, 'pg_dump'), format === 'custom' ? [...args, '-Z', '0'] : args,
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  writeFileSync(out, stdout)
}

async function compressFile (path: string, compression: Compression): Promise<string> {
  if (compression === 'none') return path
  if (compression === 'zstd') { await run('zstd', ['-q', '--rm', path]); return `${path}.zst` }
  const { readFileSync, unlinkSync } = await import('node:fs')
  writeFileSync(`${path}.gz`, gzipSync(readFileSync(path)))
  unlinkSync(path)
  return `${path}.gz`
}

let seq = 0
async function makeBackup (db: string, format: BackupFormat, compression: Compression): Promise<Backup> {
  const base = join(dir, `r${++seq}-${db}-${format}`)
  await pgDump(db, format, base)
  const file = format === 'directory' ? base : await compressFile(base, compression)
  return backupRecord({
    name: file.slice(dir.length + 1), target: 'test', database: db, format,
    compression: format === 'directory' ? 'none' : compression, level: 3, createdBy: 'test',
  })
}

t.test('every format restores into a new database with the same tables and rows', async t => {
  const cases: Array<[BackupFormat, Compression, number?]> = [
    ['custom', 'zstd'], ['custom', 'none', 2], ['plain', 'gzip'], ['tar', 'none'], ['directory', 'none', 2],
  ]
  for (const [format, compression, jobs] of cases) {
    const b = await makeBackup('restore_src', format, compression)
    // quotes, unicode and '=' (which libpq would read as a connection string) in the database name
    const db = `restored ${format}=${compression} "ü"`
    const job = startRestore(b, new LocalStorage(dir), dir, target, { database: db, create: true, ...(jobs ? { jobs } : {}) })
    const progress: RestoreProgress[] = []
    job.on('progress', (p: RestoreProgress) => { progress.push(p) })
    const result = await job.done
    t.equal(result.ok, true, `${format}/${compression}`)
    t.same(await fingerprint(db), source, `${format}/${compression}${jobs ? ` -j ${jobs}` : ''}: same tables, rows and contents`)
    t.match(progress.at(-1), { percent: 100 }, 'progress ends at 100%')
    t.ok(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1].bytes), 'progress never goes backwards')
  }
})

t.test('restoring into an existing database needs clean, which replaces it', async t => {
  const b = await makeBackup('restore_src', 'custom', 'gzip')
  await cluster.createDatabase('restore_existing')
  await cluster.psql('CREATE TABLE stray (x int); INSERT INTO stray VALUES (1)', 'restore_existing')

  const conflict = await rejection(startRestore(b, new LocalStorage(dir), dir, target, { database: 'restore_existing', create: true }).done)
  t.equal(conflict.code, 'CONFLICT')
  t.match(conflict.message, /"restore_existing" already exists/)
  t.same(await fingerprint('restore_existing'), { 'public.stray': '1 ' + (await cluster.psql("SELECT md5('(1)')")).trim() }, 'left untouched')

  await startRestore(b, new LocalStorage(dir), dir, target, { database: 'restore_existing', create: true, clean: true }).done
  t.same(await fingerprint('restore_existing'), source, 'replaced by the backup')

  await cluster.psql('DELETE FROM items WHERE id > 10', 'restore_existing')
  await startRestore(b, new LocalStorage(dir), dir, target, { database: 'restore_existing', clean: true }).done
  t.same(await fingerprint('restore_existing'), source, 'clean without create drops and restores the dumped objects in place')

  const plain = await makeBackup('restore_src', 'plain', 'zstd')
  await cluster.psql('CREATE TABLE stray (x int)', 'restore_existing')
  await startRestore(plain, new LocalStorage(dir), dir, target, { database: 'restore_existing', clean: true }).done
  t.same(await fingerprint('restore_existing'), source, 'a plain backup with clean re-creates the database')
})

t.test('a wrong target password fails with PG_AUTH_FAILED and the password appears nowhere', async t => {
  const b = await makeBackup('restore_src', 'custom', 'none')
  const secret = 'Wr0ng-pa55word-xyz'
  const bad: Target = { ...target, password: secret }
  for (const create of [true, false]) {
    const logs: string[] = []
    const job = startRestore(b, new LocalStorage(dir), dir, bad, { database: create ? 'never' : 'restore_src', create })
    job.on('log', (l: string) => logs.push(l))
    const err = await rejection(job.done)
    t.equal(err.code, 'PG_AUTH_FAILED', create ? 'while creating the database' : 'from pg_restore')
    const everything = JSON.stringify({ message: err.message, details: err.details, stack: err.stack, logs })
    t.notMatch(everything, secret)
  }
})

t.test('a backup that breaks off mid-stream fails the restore as an integrity problem', async t => {
  const b = await makeBackup('restore_src', 'custom', 'zstd')
  const { readFileSync } = await import('node:fs')
  const data = readFileSync(join(dir, b.name))
  writeFileSync(join(dir, b.name), data.subarray(0, data.length >> 1))
  const err = await rejection(startRestore(b, new LocalStorage(dir), dir, target, { database: 'half', create: true }).done)
  t.equal(err.code, 'INTEGRITY_FAILED')
  t.match(err.message, /zstd/)
})

t.test('a backup shorter on disk than recorded is refused before pg_restore starts', async t => {
  const b = await makeBackup('restore_src', 'tar', 'none')
  const { readFileSync } = await import('node:fs')
  const data = readFileSync(join(dir, b.name))
  writeFileSync(join(dir, b.name), data.subarray(0, data.length >> 1))
  const err = await rejection(startRestore({ ...b, sizeBytes: data.length }, new LocalStorage(dir), dir, target, { database: 'cut tar', create: true }).done)
  t.equal(err.code, 'INTEGRITY_FAILED')
  t.match(err.message, `is ${data.length >> 1} bytes on disk but ${data.length} were written`)
  t.equal((await cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'cut tar'")).trim(), '0', 'no database was created')
})

t.test('a restore that is not of a completed backup is refused', async t => {
  const b = await makeBackup('restore_src', 'custom', 'none')
  t.throws(() => startRestore({ ...b, status: 'failed' }, new LocalStorage(dir), dir, target, { database: 'x', create: true }), { code: 'INVALID_STATE' })
})

t.test('cancelling a running restore rejects with CANCELLED and leaves no backend behind', async t => {
  await createSlowRestoreDatabase(cluster, 'restore_slowsrc', 5000)
  const activity = async (appName: string, where = ''): Promise<number> =>
    Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${appName}' ${where}`))

  for (const [format, compression] of [['custom', 'zstd'], ['plain', 'gzip']] as const) {
    const b = await makeBackup('restore_slowsrc', format, compression)
    const job = startRestore(b, new LocalStorage(dir), dir, target, { database: `slow copy ${format}`, create: true }, { cancelGraceMs: 2000 })
    const appName = `pgkeep-restore-${job.id}`
    // psql prints nothing as it goes, so watch the server: the restore's backend running its COPY
    let settled = false
    job.done.catch(() => {}).finally(() => { settled = true })
    while (!settled && await activity(appName, "AND query LIKE 'COPY%'") === 0) await new Promise(resolve => setTimeout(resolve, 50))
    t.equal(settled, false, `${format}: the restore is still copying when cancelled`)
    const started = Date.now()
    await job.cancel()
    const err = await rejection(job.done)
    t.equal(err.code, 'CANCELLED', format)
    t.ok(Date.now() - started < 10_000, 'cancel is prompt')
    t.equal(await activity(appName), 0, 'no backend remains')
    t.equal((await cluster.psql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'slow copy ${format}%'`)).trim(), '0',
      'the database it was creating is gone, scratch name and all')
  }
})

t.test('pg_restore failures are classified from its error lines, not from object names in verbose lines', async t => {
  const id = (s: string): string => s
  const verbose = ['pg_restore: creating TABLE "public.error_log"', 'pg_restore: processing data for table "public.password authentication failed"']
  const stmt = classifyRestoreFailure('pg_restore', [...verbose,
    'pg_restore: error: could not execute query: ERROR:  role "bob" does not exist',
    'Command was: ALTER TABLE public.t OWNER TO bob;'], 1, id)
  t.equal(stmt.code, 'PG_RESTORE_FAILED', 'a missing owner role inside the dump is a restore failure, not a login failure')
  t.match(stmt.message, /role "bob" does not exist \| Command was: ALTER TABLE/)
  const login = classifyRestoreFailure('psql', ['psql: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "postgres"'], 2, id)
  t.equal(login.code, 'PG_AUTH_FAILED')
  const gone = classifyRestoreFailure('pg_restore', ['pg_restore: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" does not exist'], 1, id)
  t.equal(gone.code, 'PG_CONNECTION_FAILED')
  t.equal(dbnameConninfo("it's a=b\\c"), "dbname='it\\'s a=b\\\\c'")
})
