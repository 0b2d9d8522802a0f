import t from 'tap'
import { ConditionWatch } from '../../server/alerts/condition-watch.ts'
import type { Notice } from '../../server/alerts/notice.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { openService } from '../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'condition_watch_app', { rows: 100 })

const HOUR = 3_600_000

t.test('a target is stale past its maximum age: told once, cleared by a fresh backup, told again when it ages', async t => {
  const base = testConfig(cluster, 'condition_watch_app')
  t.teardown(base.cleanup)
  const config = {
    ...base,
    targets: { default: { ...base.targets.default, staleAfterHours: 2 }, unwatched: { ...base.targets.default, name: 'unwatched', staleAfterHours: 0 } },
  }
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const told: Notice[] = []
  let now = Date.now()
  const watch = new ConditionWatch(service, config, n => told.push(n), { now: () => now })

  await watch.checkStale()
  t.same(told, [], 'no backup yet, but the watch has just started: not stale')
  now += 3 * HOUR
  await watch.checkStale()
  t.same(told, [{ event: 'target.stale', target: { name: 'default', maxAgeHours: 2 } }], 'no completed backup in 3 h; the target with staleAfterHours 0 is not watched')
  await watch.checkStale()
  t.equal(told.length, 1, 'told once, not at every check')

  const backup = await service.waitFor((await service.create({ compression: 'none' }, 'test')).id)
  t.equal(backup.status, 'completed')
  now = Date.parse(backup.finishedAt!) + HOUR
  await watch.checkStale()
  t.equal(told.length, 1, 'fresh again')
  now = Date.parse(backup.finishedAt!) + 2 * HOUR + 1
  await watch.checkStale()
  t.same(told[1], { event: 'target.stale', target: { name: 'default', maxAgeHours: 2, lastBackupAt: backup.finishedAt, lastBackupName: backup.name } })
})

t.test('the global staleAfterHours applies to targets that set none', async t => {
  const base = testConfig(cluster, 'condition_watch_app')
  t.teardown(base.cleanup)
  const config = { ...base, staleAfterHours: 1 }
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const told: Notice[] = []
  let now = Date.now()
  const watch = new ConditionWatch(service, config, n => told.push(n), { now: () => now })
  now += 2 * HOUR
  await watch.check()
  t.match(told, [{ event: 'target.stale', target: { name: 'default', maxAgeHours: 1 } }])
})

t.test('the backups volume under minFreeBytes is told once, and again after it recovered', async t => {
  const base = testConfig(cluster, 'condition_watch_app')
  t.teardown(base.cleanup)
  // more than any disk has: the real statfs of the real directory says "low"
  const config = { ...base, minFreeBytes: Number.MAX_SAFE_INTEGER }
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const told: Notice[] = []
  const watch = new ConditionWatch(service, config, n => told.push(n))
  await watch.checkStorage()
  t.equal(told.length, 1)
  t.match(told[0], { event: 'storage.low', storage: { path: config.backupDir, minFreeBytes: Number.MAX_SAFE_INTEGER } })
  t.ok((told[0] as Extract<Notice, { event: 'storage.low' }>).storage.freeBytes > 0)
  await watch.checkStorage()
  t.equal(told.length, 1, 'not repeated while it stays low')
  config.minFreeBytes = 1
  await watch.checkStorage()
  config.minFreeBytes = Number.MAX_SAFE_INTEGER
  await watch.checkStorage()
  t.equal(told.length, 2, 'low again after it had recovered')
  config.minFreeBytes = 0
  await watch.checkStorage()
  t.equal(told.length, 2, 'a floor of 0 watches nothing')
})
