import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { openService, waitUntil } from '../../helpers/service.ts'
import type { PgkeepError } from '../../../server/errors.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
for (const db of ['sets_cancel_a', 'sets_cancel_b', 'sets_cancel_c', 'sets_fail_a', 'sets_fail_b', 'sets_fail_c']) {
  await createSampleDatabase(cluster, db, { rows: 300 })
}

t.test('cancelling a set mid-way stops the running member, never starts the rest, and keeps what completed', async t => {
  const config = testConfig(cluster, 'sets_cancel_a')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  // the second database's pg_dump waits on a lock until released: the set is mid-way by construction
  const gate = await holdDumpGate(cluster, 'sets_cancel_b')
  t.teardown(() => gate.release())
  const first = await service.create({ databases: ['sets_cancel_a', 'sets_cancel_b', 'sets_cancel_c'] }, 'test')
  const setId = first.set!.id
  const memberOf = (db: string) => service.getSet(setId).members.find(m => m.database === db)!
  await waitUntil(() => memberOf('sets_cancel_b').status === 'running', 30_000, 'the gated member to run')

  const midway = service.getSet(setId)
  t.equal(midway.status, 'running')
  t.equal(midway.progress?.membersDone, 2, 'globals and the first database are done')
  t.equal(midway.progress?.currentDatabase, 'sets_cancel_b')
  t.ok(midway.progress!.percent > 0 && midway.progress!.percent < 100, `set percent ${midway.progress!.percent} is between 0 and 100`)
  const weights = midway.members.map(m => m.set!.weightBytes)
  t.equal(midway.progress?.totalBytes, weights.reduce((a, b) => a + b, 0), 'the total is the databases\' sizes known up front')

  const cancelled = await service.cancelSet(setId)
  t.equal(cancelled.status, 'cancelled')
  t.same(cancelled.members.map(m => [m.kind ?? m.database, m.status]),
    [['globals', 'completed'], ['sets_cancel_a', 'completed'], ['sets_cancel_b', 'cancelled'], ['sets_cancel_c', 'cancelled']])
  t.same(readdirSync(config.backupDir).filter(f => f.endsWith('.partial')), [], 'no partial file left')
  t.notOk(readdirSync(config.backupDir).some(f => f.includes('sets_cancel_c')), 'the member that never started wrote nothing')
  const manifest = JSON.parse(readFileSync(join(config.backupDir, `${cancelled.name}.set.json`), 'utf8'))
  t.same(manifest.members.map((m: { status: string }) => m.status), ['completed', 'completed', 'cancelled', 'cancelled'], 'the set manifest says how each member ended')
  await t.rejects(service.cancelSet(setId), { code: 'INVALID_STATE' }, 'a set that ended cannot be cancelled again')
})

t.test('cancelling one member cancels the whole set', async t => {
  const config = testConfig(cluster, 'sets_cancel_a')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const gate = await holdDumpGate(cluster, 'sets_cancel_a')
  t.teardown(() => gate.release())
  const first = await service.create({ databases: ['sets_cancel_a', 'sets_cancel_c'], globals: false }, 'test')
  await waitUntil(() => service.get(first.id).status === 'running', 30_000, 'the first member to run')
  await service.cancel(first.id)
  t.same(service.getSet(first.set!.id).members.map(m => m.status), ['cancelled', 'cancelled'])
})

t.test('a database dropped during the run fails its member and the set; the other members complete and are kept', async t => {
  const config = testConfig(cluster, 'sets_fail_a')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const gate = await holdDumpGate(cluster, 'sets_fail_a')
  const first = await service.create({ databases: ['sets_fail_a', 'sets_fail_b', 'sets_fail_c'] }, 'test')
  const setId = first.set!.id
  await waitUntil(() => service.getSet(setId).members.find(m => m.database === 'sets_fail_a')?.status === 'running', 30_000, 'the first database to run')
  // the second database is still queued: nobody is connected to it
  await cluster.psql('DROP DATABASE sets_fail_b')
  await gate.release()
  const set = await service.waitForSet(setId)
  t.equal(set.status, 'failed')
  t.same(set.members.map(m => [m.kind ?? m.database, m.status]),
    [['globals', 'completed'], ['sets_fail_a', 'completed'], ['sets_fail_b', 'failed'], ['sets_fail_c', 'completed']])
  t.match(set.error?.message, /^database sets_fail_b: /, 'the set names the member that failed')
  await t.rejects(service.restoreSet(setId), { code: 'INVALID_STATE' }, 'a failed set is not restored whole')
  t.equal((await service.validate(set.members[3].id)).verification?.ok, true, 'a kept member is a good backup on its own')
})

t.test('bad set requests are refused before anything is queued', async t => {
  const config = testConfig(cluster, 'sets_cancel_a')
  t.teardown(config.cleanup)
  const service = await openService(config)
  t.teardown(() => service.close())
  const bad: [unknown, string, RegExp][] = [
    [{ allDatabases: true, databases: ['sets_cancel_a'] }, 'databases', /cannot be given with allDatabases/],
    [{ databases: ['sets_cancel_a', 'no_such_db'] }, 'databases', /no database "no_such_db"/],
    [{ allDatabases: true, schemas: ['public'] }, 'schemas', /whole databases/],
    [{ allDatabases: true, target: 'nope' }, 'target', /unknown target/],
    [{ databases: [] }, 'databases', /./],
    [{ allDatabases: 'yes' }, 'allDatabases', /./],
  ]
  for (const [req, field, message] of bad) {
    const err = await service.create(req, 'test').then(() => undefined, (e: unknown) => e as PgkeepError)
    t.equal(err?.code, 'INVALID_INPUT', JSON.stringify(req))
    t.equal(err?.details?.field, field, `field named for ${JSON.stringify(req)}`)
    t.match(err?.message, message)
  }
  t.equal(service.list().total, 0, 'nothing recorded')
  t.equal(service.listSets().total, 0)
})
