import { once } from 'node:events'
import t from 'tap'
import { DrillScheduler } from '../../server/schedules/drill-scheduler.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'
import { openService } from '../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('drill_sched')
await cluster.psql('CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 100) g', 'drill_sched')
const config = testConfig(cluster, 'drill_sched')
t.teardown(config.cleanup)
const service = await openService(config)
t.teardown(() => service.close())

t.test('a scheduled drill waits for the target\'s running backup, then drills the newest completed one', async t => {
  const first = await service.waitFor((await service.create({}, 'test')).id)
  t.equal(first.status, 'completed')
  const gate = await holdDumpGate(cluster, 'drill_sched')
  t.teardown(() => gate.release())
  const held = await service.create({}, 'test')
  const scheduler = new DrillScheduler(service, [{ target: 'default', cron: '0 4 * * *' }])
  t.teardown(() => scheduler.close())
  const waiting = once(scheduler, 'waiting')
  const fired = once(scheduler, 'fired')
  const finished = once(scheduler, 'finished')
  const run = scheduler.run('default')
  await waiting
  t.same(await service.drills.list(), [], 'no drill while a backup of the target runs')
  await gate.release()
  const [{ drill }] = await fired
  t.equal(drill.backupId, held.id, 'the backup that was running, now the newest completed one')
  t.equal(drill.scheduled, true)
  t.equal(drill.createdBy, 'schedule:drill:default')
  const [{ drill: ended }] = await finished
  t.equal(ended.status, 'passed')
  await run
})
