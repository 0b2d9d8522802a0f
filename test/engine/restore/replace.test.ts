import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { uuidv7 } from 'uuidv7'
import type { Backup, BackupFormat } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import { isPgkeepError, type PgkeepError } from '../../../server/errors.ts'
import { dbnameConninfo, startRestore } from '../../../server/engine/restore/restore-job.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'

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
const databaseExists = async (db: string): Promise<boolean> =>
  (await cluster.psql(`SELECT count(*) FROM pg_database WHERE datname = '${db.replace(/'/g, "''")}'`)).trim() === '1'
const scratchDatabases = async (): Promise<string[]> =>
  (await cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_pgkeep\\_%' ORDER BY 1")).split('\n').filter(Boolean)

let seq = 0
async function makeBackup (db: string, format: BackupFormat): Promise<Backup> {
  const name = `replace-${++seq}.${format}`
  const f = { custom: 'c', plain: 'p', tar: 't', directory: 'd' }[format]
  await run(join(cluster.binDir, 'pg_dump'), ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', db, '-F', f, ...(format === 'custom' ? ['-Z', '0'] : []), '-f', join(dir, name)])
  return {
    id: uuidv7(),
    name,
    target: 'test',
    database: db,
    format,
    compression: 'none',
    level: 0,
    options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
    status: 'completed',
    createdAt: new Date().toISOString(),
    createdBy: 'test',
    pinned: false,
  }
}

async function rejection (p: Promise<unknown>): Promise<PgkeepError> {
  try { await p } catch (err) { if (isPgkeepError(err)) return err; throw err }
  throw new Error('expected the restore to fail')
}

const sourceConstraints = await constraints('replace_src')

t.test('restoring with clean over an existing copy of partitioned tables replaces it whole', async t => {
  for (const format of ['custom', 'directory', 'tar'] as const) {
    const b = await makeBackup('replace_src', format)
    const db = `replace copy ${format}`
    await startRestore(b, dir, target, { database: db, create: true }).done
    t.equal(await constraints(db), sourceConstraints, `${format}: the first restore has every constraint`)
    await cluster.psql('DELETE FROM refq; DELETE FROM q WHERE id > 10', dbnameConninfo(db))
    await startRestore(b, dir, target, { database: db, clean: true }).done
    t.equal(await constraints(db), sourceConstraints, `${format}: still every constraint after clean`)
    t.equal(await rows(db), '150/2', `${format}: the rows are the backup's again`)
  }
  t.same(await scratchDatabases(), [], 'no scratch or old database is left behind')
})
