import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('overview_app')
const { as, service } = await setupApp(t, cluster, 'overview_app', {}, { staleAfterHours: 26 })

t.test('GET /api/overview: a card per target with its last completed backup, not stale, and storage used', async t => {
  const before = await as('viewer', { method: 'GET', url: '/api/overview' })
  t.equal(before.statusCode, 200)
  t.match(before.json().targets, [{ target: 'default', stale: true, failures24h: 0, storage: { bytes: 0, backups: 0 } }])

  const b = await service.create({}, 'test')
  const done = await service.waitFor(b.id)
  t.equal(done.status, 'completed')
  const res = await as('viewer', { method: 'GET', url: '/api/overview' })
  const card = res.json().targets[0]
  t.match(card, { target: 'default', stale: false, staleAfterHours: 26, lastCompleted: { id: b.id, name: done.name, sizeBytes: done.sizeBytes }, storage: { bytes: done.sizeBytes, backups: 1 } })
  t.ok(card.lastCompleted.ageSeconds < 3600)
})

t.test('GET /api/overview needs a login', async t => {
  t.equal((await as(undefined, { method: 'GET', url: '/api/overview' })).statusCode, 401)
})
