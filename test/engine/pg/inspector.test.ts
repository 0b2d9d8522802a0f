import t from 'tap'
import type { Target } from '../../../server/config.ts'
import { PgkeepError } from '../../../server/errors.ts'
import { checkDumpCompatible, inspectTarget } from '../../../server/engine/pg/inspector.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createNamePatternDatabase, estimatedTables, namePatternCases, patternArgs, pgDumpSelection } from '../../helpers/name-pattern-cases.ts'
import { createServer } from 'node:net'

const DB = 'inspect'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createNamePatternDatabase(cluster, DB)

const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: DB }

const pgDumpTables = async (args: string[]): Promise<string[]> => await pgDumpSelection(cluster, DB, args)
const inspectedTables = async (schemas: string[], excludeTables: string[]): Promise<string[]> => await estimatedTables(target, schemas, excludeTables)

t.test('lists exactly the tables pg_dump copies, with server version, sizes and row estimates', async t => {
  const facts = await inspectTarget(target, { schemas: [], excludeTables: [], schemaOnly: false, dataOnly: false })
  t.equal(facts.serverMajor, 15)
  t.match(facts.serverVersion, /^15\.\d+$/)
  t.same(facts.tables.map(x => `${x.schema}.${x.name}`).sort(), await pgDumpTables([]))
  const names = facts.tables.map(x => x.name)
  t.notOk(names.includes('orders'), 'a partitioned parent holds no rows of its own')
  t.notOk(names.includes('mv') || names.includes('remote_small'), 'no materialized views or foreign tables')

  const toast = facts.tables.find(x => x.name === 'big_toast')!
  const heapOnly = Number(await cluster.psql(`SELECT pg_relation_size('public.big_toast')`, DB))
  t.ok(toast.bytes > heapOnly * 10, `TOAST counts: ${toast.bytes} bytes against ${heapOnly} in the heap`)
  t.equal(facts.totalBytes, facts.tables.reduce((s, x) => s + x.bytes, 0))
  t.equal(facts.tables.find(x => x.name === 'small')!.reltuples, 200)
  const oid = Number(await cluster.psql(`SELECT 'public.small'::regclass::oid`, DB))
  t.equal(facts.tables.find(x => x.name === 'small')!.relid, oid)
})

t.test('a schema-only scope lists the same tables with nothing to copy', async t => {
  const facts = await inspectTarget(target, { schemas: [], excludeTables: [], schemaOnly: true, dataOnly: false })
  t.ok(facts.tables.length > 5)
  t.ok(facts.tables.every(x => x.bytes === 0))
  t.equal(facts.totalBytes, 0)
})

const cases = namePatternCases(DB)
for (const c of cases) {
  t.test(`filters match pg_dump -n/-T: ${c.what}`, async t => {
    const [ours, theirs] = await Promise.all([inspectedTables(c.schemas ?? [], c.exclude ?? []), pgDumpTables(patternArgs(c))])
    t.same(ours, theirs)
  })
}

t.test('a pattern naming another database is refused before connecting', async t => {
  await t.rejects(inspectTarget(target, { schemas: [], excludeTables: ['otherdb.public.small'], schemaOnly: false, dataOnly: false }),
    { code: 'INVALID_INPUT' })
  await t.rejects(inspectTarget(target, { schemas: ['a.b.c'], excludeTables: [], schemaOnly: false, dataOnly: false }),
    { code: 'INVALID_INPUT' })
})

t.test('schema patterns of which none matches are refused, as pg_dump would refuse them', async t => {
  await t.rejects(inspectTarget(target, { schemas: ['nosuch*'], excludeTables: [], schemaOnly: false, dataOnly: false }),
    { code: 'INVALID_INPUT', message: /nosuch/ })
  await t.rejects(pgDumpTables(['-n', 'nosuch*']), { message: /no matching schemas were found/ })
  t.same(await inspectedTables(['nosuch', 'scratch'], []), await pgDumpTables(['-n', 'nosuch', '-n', 'scratch']), 'one matching pattern is enough')
})

t.test('connects over a unix socket directory as well as TCP', async t => {
  const facts = await inspectTarget({ ...target, host: cluster.socketDir, password: undefined }, { schemas: ['sales'], excludeTables: [], schemaOnly: false, dataOnly: false })
  t.same(facts.tables.map(x => x.name).sort(), ['orders_2023', 'orders_2024', 'customers'].sort())
})

const scope = { schemas: [], excludeTables: [], schemaOnly: false, dataOnly: false }

t.test('a wrong password is PG_AUTH_FAILED and the password appears nowhere in the error', async t => {
  const password = 'Wr0ng-Pa55word-7c1e'
  const err = await inspectTarget({ ...target, password }, scope).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof PgkeepError)
  const e = err as PgkeepError
  t.equal(e.code, 'PG_AUTH_FAILED')
  t.match(e.message, /password authentication failed/)
  t.equal(e.details?.retryable, false)
  const everything = [e.message, e.stack, JSON.stringify(e.details), JSON.stringify(e), String(e.cause)].join('\n')
  t.notOk(everything.includes(password), 'wrong password not disclosed')
  t.notOk(everything.includes(cluster.password), 'real password not disclosed')
})

async function closedPort (): Promise<number> {
  return await new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

t.test('a closed port is PG_CONNECTION_FAILED and retryable', async t => {
  const port = await closedPort()
  await t.rejects(inspectTarget({ ...target, port }, scope), { code: 'PG_CONNECTION_FAILED', details: { retryable: true } })
})

t.test('a missing database is PG_CONNECTION_FAILED and not retryable', async t => {
  const err = await inspectTarget({ ...target, database: 'no_such_db' }, scope).then(() => undefined, (e: unknown) => e) as PgkeepError
  t.equal(err.code, 'PG_CONNECTION_FAILED')
  t.equal(err.details?.retryable, false)
  t.match(err.message, /no_such_db/)
})

t.test('pg_dump older than the server is a version mismatch that says what to install', async t => {
  t.throws(() => checkDumpCompatible(15, 16), { code: 'PG_VERSION_MISMATCH', message: /the server runs PostgreSQL 16 but the newest pg_dump found is version 15.*postgresql-client-16 package, from the PGDG apt repository/ })
  t.doesNotThrow(() => checkDumpCompatible(16, 15))
  t.doesNotThrow(() => checkDumpCompatible(15, 15))
  t.throws(() => checkDumpCompatible(16, 8), { code: 'PG_VERSION_MISMATCH' })
})
