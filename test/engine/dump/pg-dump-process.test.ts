import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { BackupOptions } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import type { PgkeepError } from '../../../server/errors.ts'
import { dbnameConninfo, prepareChildEnv } from '../../../server/engine/pg/passfile.ts'
import { buildPgDumpArgs, classifyPgFailure, parseDumpingTable, spawnPgDump, type PgDumpPlan } from '../../../server/engine/dump/pg-dump-process.ts'
import { findPgTool } from '../../../server/engine/pg/tools.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'

const OPTIONS: BackupOptions = { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false }
const CONN = ['-h', 'db.example', '-p', '5432', '-U', 'app', '-d', 'app']

function plan (over: Omit<Partial<PgDumpPlan>, 'options'> & { options?: Partial<BackupOptions> } = {}): PgDumpPlan {
  return { format: 'custom', compression: 'zstd', level: 3, pgDumpMajor: 15, ...over, options: { ...OPTIONS, ...over.options } }
}

function rejects (t: Test, fn: () => unknown, field: string, what: string): void {
  const err = t.throws(fn, what) as PgkeepError
  t.equal(err?.code, 'INVALID_INPUT', `${what}: INVALID_INPUT`)
  t.same(err?.details, { field }, `${what}: names the ${field} field`)
}

t.test('single-file formats write uncompressed to stdout so our compressor sees the raw stream', async t => {
  for (const compression of ['zstd', 'gzip', 'none'] as const) {
    t.same(buildPgDumpArgs(plan({ format: 'custom', compression, level: compression === 'none' ? 0 : 3 }), CONN),
      ['--verbose', '-w', '-F', 'c', '-Z0', ...CONN], `custom + ${compression}`)
    t.same(buildPgDumpArgs(plan({ format: 'plain', compression, level: compression === 'none' ? 0 : 3 }), CONN),
      ['--verbose', '-w', '-F', 'p', ...CONN], `plain + ${compression}`)
    t.same(buildPgDumpArgs(plan({ format: 'tar', compression, level: compression === 'none' ? 0 : 3 }), CONN),
      ['--verbose', '-w', '-F', 't', ...CONN], `tar + ${compression}`)
  }
})

t.test('directory format lets pg_dump write and compress the files itself, with parallel jobs', async t => {
  const dir = '/backups/x.dir.partial'
  t.same(buildPgDumpArgs(plan({ format: 'directory', compression: 'gzip', level: 5, outputDir: dir, options: { jobs: 4 } }), CONN),
    ['--verbose', '-w', '-F', 'd', '-f', dir, '-j', '4', '-Z', '5', ...CONN])
  t.same(buildPgDumpArgs(plan({ format: 'directory', compression: 'none', level: 0, outputDir: dir }), CONN),
    ['--verbose', '-w', '-F', 'd', '-f', dir, '-j', '1', '-Z0', ...CONN])
  t.same(buildPgDumpArgs(plan({ format: 'directory', compression: 'zstd', level: 7, outputDir: dir, pgDumpMajor: 16 }), CONN),
    ['--verbose', '-w', '-F', 'd', '-f', dir, '-j', '1', '--compress=zstd:7', ...CONN])
})

t.test('scope and ownership options map to their pg_dump flags', async t => {
  const args = buildPgDumpArgs(plan({ options: { schemaOnly: true, schemas: ['public', 'sales'], excludeTables: ['public.audit*'], noOwner: true, noPrivileges: true } }), CONN)
  t.same(args, ['--verbose', '-w', '-F', 'c', '-Z0', '--schema-only', '--schema=public', '--schema=sales', '--exclude-table=public.audit*', '--no-owner', '--no-privileges', ...CONN])
  t.ok(buildPgDumpArgs(plan({ options: { dataOnly: true } }), CONN).includes('--data-only'))
})

t.test('invalid combinations are rejected with INVALID_INPUT on the offending field', async t => {
  rejects(t, () => buildPgDumpArgs(plan({ format: 'custom', options: { jobs: 2 } }), CONN), 'jobs', 'jobs > 1 with custom')
  rejects(t, () => buildPgDumpArgs(plan({ format: 'plain', options: { jobs: 4 } }), CONN), 'jobs', 'jobs > 1 with plain')
  rejects(t, () => buildPgDumpArgs(plan({ options: { schemaOnly: true, dataOnly: true } }), CONN), 'dataOnly', 'schema-only and data-only')
  rejects(t, () => buildPgDumpArgs(plan({ format: 'directory', compression: 'zstd', outputDir: '/x', pgDumpMajor: 15 }), CONN), 'compression', 'zstd in directory on pg_dump 15')
  rejects(t, () => buildPgDumpArgs(plan({ compression: 'gzip', level: 12 }), CONN), 'level', 'gzip level 12')
  const err = t.throws(() => buildPgDumpArgs(plan({ format: 'directory', compression: 'zstd', outputDir: '/x', pgDumpMajor: 15 }), CONN)) as PgkeepError
  t.match(err.message, /pg_dump 16\+; use gzip/)
})

t.test('schema and table patterns stay single argv elements that cannot be read as flags', async t => {
  const args = buildPgDumpArgs(plan({ options: { schemas: ['-x', 'a b', '--file=/etc/passwd'], excludeTables: ['-T', 'x; rm -rf /'] } }), CONN)
  t.ok(args.includes('--schema=-x'))
  t.ok(args.includes('--schema=a b'))
  t.ok(args.includes('--schema=--file=/etc/passwd'))
  t.ok(args.includes('--exclude-table=-T'))
  t.ok(args.includes('--exclude-table=x; rm -rf /'))
  t.notOk(args.includes('-x'))
  t.notOk(args.includes('-T'))
})

t.test('against a real cluster', async t => {
  const cluster = await testCluster()
  t.teardown(cluster.stop)
  const pgDump = await findPgTool('pg_dump', cluster.binDir)
  const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, database: 'postgres', password: cluster.password }
  const runDir = mkdtempSync(join(tmpdir(), 'pgkeep-pgdump-'))
  t.teardown(() => rmSync(runDir, { recursive: true, force: true }))

  async function dump (tgt: Target, args: (connArgs: string[]) => string[]): Promise<{ code: number | null, stderrTail: string[], lines: string[] }> {
    const child = await prepareChildEnv(tgt, 'pgkeep-test', runDir)
    try {
      const run = spawnPgDump(pgDump.path, args(child.connArgs()), child.env)
      const lines: string[] = []
      run.onLine(l => lines.push(l))
      run.stdout.resume()
      const exit = await run.exited
      return { code: exit.code, stderrTail: exit.stderrTail, lines }
    } finally {
      await child.dispose()
    }
  }

  t.test('the password reaches pg_dump only through the passfile, never argv', async t => {
    const child = await prepareChildEnv(target, 'pgkeep-test', runDir)
    t.teardown(child.dispose)
    const args = buildPgDumpArgs(plan({ options: { schemas: ['public'] } }), child.connArgs())
    t.notOk(args.some(a => a.includes(cluster.password)), 'no argv element holds the password')
    t.notOk(Object.values(child.env).some(v => v?.includes(cluster.password)), 'no env variable holds the password')
    const run = spawnPgDump(pgDump.path, args, child.env)
    run.stdout.resume()
    t.equal((await run.exited).code, 0, 'and the dump over password-protected TCP succeeds')
  })

  t.test('every table is recognised in real pg_dump --verbose output, odd names included', async t => {
    await cluster.createDatabase('process_names')
    await cluster.psql(`
      create table public.orders(id int); insert into public.orders values (1);
      create schema "Mixed Case"; create table "Mixed Case"."Ünïcode tbl"(x int);
      create table public."we""ird.name"(x int);
      create table public."Upper Case"(x int);
      create schema "dot.schema"; create table "dot.schema"."t.1"(x int);`, 'process_names')
    const expected = [
      { schema: 'public', table: 'orders' },
      { schema: 'Mixed Case', table: 'Ünïcode tbl' },
      { schema: 'public', table: 'we"ird.name' },
      { schema: 'public', table: 'Upper Case' },
      { schema: 'dot.schema', table: 't.1' },
    ]
    const { code, lines } = await dump({ ...target, database: 'process_names' }, conn => buildPgDumpArgs(plan({ format: 'plain', compression: 'none', level: 0 }), conn))
    t.equal(code, 0)
    const seen = lines.map(l => parseDumpingTable(l, expected)).filter(x => x !== undefined)
    t.same(new Set(seen.map(s => JSON.stringify(s))), new Set(expected.map(s => JSON.stringify(s))), 'each table once, split right')
    t.equal(seen.length, expected.length)
    // without the table list the first dot wins, which is right for every name here but the dotted schema
    t.same(lines.map(l => parseDumpingTable(l)).filter(x => x?.table === 'we"ird.name'), [{ schema: 'public', table: 'we"ird.name' }])
    t.notOk(lines.some(l => parseDumpingTable(l) === undefined && /dumping contents/.test(l)), 'no dumping line is missed')
  })

  t.test('database names that look like connection strings dump the database of that name, not another one', async t => {
    // "dbname=proc_other" read as a conninfo would dump proc_other; "proc_a=b" would not even parse
    const databases = { 'proc_a=b': 'marker_a_equals_b', 'dbname=proc_other': 'marker_dbname_other', proc_other: 'marker_plain_other' }
    for (const [db, table] of Object.entries(databases)) {
      await cluster.createDatabase(db)
      await cluster.psql(`create table ${table}(id int)`, dbnameConninfo(db))
    }
    for (const [db, table] of Object.entries(databases)) {
      const child = await prepareChildEnv({ ...target, database: db }, 'pgkeep-test', runDir)
      t.teardown(child.dispose)
      const run = spawnPgDump(pgDump.path, buildPgDumpArgs(plan({ format: 'plain', compression: 'none', level: 0 }), child.connArgs()), child.env)
      let sql = ''
      run.stdout.on('data', (d: Buffer) => { sql += d.toString() })
      const exit = await run.exited
      t.equal(exit.code, 0, `${db}: pg_dump succeeds`, { stderr: exit.stderrTail.slice(-3) })
      t.match(sql, new RegExp(`CREATE TABLE public\\.${table} `), `${db}: its own table is in the dump`)
      for (const other of Object.values(databases).filter(x => x !== table)) t.notMatch(sql, other, `${db}: no table of another database`)
    }
  })

  t.test('a wrong password is an authentication failure that is not retried', async t => {
    const { code, stderrTail } = await dump({ ...target, password: 'not-the-Secr3t' }, conn => buildPgDumpArgs(plan(), conn))
    t.equal(code, 1)
    const err = classifyPgFailure(stderrTail, code)
    t.equal(err.code, 'PG_AUTH_FAILED')
    t.equal(err.retryable, false)
    t.match(err.message, /password authentication failed/)
    t.notMatch(err.message, /not-the-Secr3t/)
  })

  t.test('a closed port is a connection failure worth retrying', async t => {
    const { code, stderrTail } = await dump({ ...target, port: 1 }, conn => buildPgDumpArgs(plan(), conn))
    const err = classifyPgFailure(stderrTail, code)
    t.equal(err.code, 'PG_CONNECTION_FAILED')
    t.equal(err.retryable, true)
    t.match(err.message, /Connection refused/)
  })

  t.test('a missing database is a connection failure that names the database and is not retried', async t => {
    const { code, stderrTail } = await dump({ ...target, database: 'no_such_db' }, conn => buildPgDumpArgs(plan(), conn))
    const err = classifyPgFailure(stderrTail, code)
    t.equal(err.code, 'PG_CONNECTION_FAILED')
    t.equal(err.retryable, false)
    t.match(err.message, /"no_such_db"/)
  })

  t.test('a pg_dump that cannot be started reports it through exited instead of throwing', async t => {
    const run = spawnPgDump('/nonexistent/pg_dump', ['--version'], process.env)
    run.stdout.resume()
    const exit = await run.exited
    t.equal(exit.code, null)
    t.match(exit.spawnError, /ENOENT/)
    t.equal(classifyPgFailure(exit.stderrTail, exit.code).code, 'PG_DUMP_FAILED')
  })
})

t.test('a pg_dump killed by a signal says which signal', async t => {
  t.equal(classifyPgFailure([], null, 'SIGKILL').message, 'pg_dump was killed by SIGKILL without an error message')
  t.equal(classifyPgFailure(['pg_dump: dumping contents of table "public.t"'], null, 'SIGSEGV').message, 'pg_dump was killed by SIGSEGV: pg_dump: dumping contents of table "public.t"')
})

t.test('failures pg_dump reports in words are classified from their stderr', async t => {
  const cases: [string[], string, boolean][] = [
    [['pg_dump: error: aborting because of server version mismatch', 'pg_dump: detail: server version: 17.2; pg_dump version: 15.14'], 'PG_VERSION_MISMATCH', false],
    [['pg_dump: error: could not write to file: No space left on device'], 'DISK_FULL', false],
    [['pg_dump: error: connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  the database system is starting up'], 'PG_CONNECTION_FAILED', true],
    [['pg_dump: error: connection to server at "db", port 5432 failed: FATAL:  sorry, too many clients already'], 'PG_CONNECTION_FAILED', true],
    [['pg_dump: error: connection to server at "db", port 5432 failed: timeout expired'], 'PG_CONNECTION_FAILED', true],
    [['pg_dump: error: connection to server at "db", port 5432 failed: fe_sendauth: no password supplied'], 'PG_AUTH_FAILED', false],
    [['pg_dump: error: query failed: ERROR:  permission denied for table secrets', 'pg_dump: detail: Query was: LOCK TABLE public.secrets IN ACCESS SHARE MODE'], 'PG_DUMP_FAILED', false],
  ]
  for (const [lines, code, retryable] of cases) {
    const err = classifyPgFailure(lines, 1)
    t.equal(err.code, code, lines[0])
    t.equal(err.retryable, retryable, `${lines[0]}: retryable ${retryable}`)
  }
  t.match(classifyPgFailure(cases[6][0], 1).message, /exited with code 1: .*permission denied for table secrets/)
})

t.test('table names in verbose lines never pass for errors', async t => {
  const err = classifyPgFailure(['pg_dump: dumping contents of table "public.No space left on device"', 'pg_dump: error: query failed: boom'], 1)
  t.equal(err.code, 'PG_DUMP_FAILED')
  t.match(err.message, /boom/)
})

t.test('anything resembling a password is scrubbed from failure messages', async t => {
  const err = classifyPgFailure(['pg_dump: error: invalid connection string "host=db password=hunter2 user=x"', 'postgres://app:hunter3@db/app'], 1)
  t.notMatch(err.message, /hunter2/)
  const err2 = classifyPgFailure(['pg_dump: error: could not parse postgres://app:hunter3@db/app'], 1)
  t.notMatch(err2.message, /hunter3/)
  t.match(err2.message, /postgres:\/\/app:\*\*\*@db/)
})

t.test('dumping lines are parsed, other lines are not', async t => {
  t.same(parseDumpingTable('pg_dump: dumping contents of table "public.orders"'), { schema: 'public', table: 'orders' })
  t.same(parseDumpingTable('pg_dump: dumping contents of table "a.b.c"', [{ schema: 'a.b', table: 'c' }]), { schema: 'a.b', table: 'c' })
  t.same(parseDumpingTable('pg_dump: dumping contents of table "a.b.c"'), { schema: 'a', table: 'b.c' })
  t.equal(parseDumpingTable('pg_dump: processing data for table "public.orders"'), undefined)
  t.equal(parseDumpingTable('pg_dump: reading schemas'), undefined)
})
