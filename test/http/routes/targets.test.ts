import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { testConfig } from '../../helpers/sample-db.ts'
import { setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('targets_app')
const base = testConfig(cluster, 'targets_app')
t.teardown(base.cleanup)
const gone = { name: 'gone', host: '127.0.0.1', port: 1, user: 'backup', database: 'nowhere', password: 'Sekr1t-do-not-show' }
const { app, as } = await setupApp(t, cluster, 'targets_app', {}, { targets: { ...base.targets, gone } })

t.test('GET /api/targets: each target, its server version and whether the newest pg_dump can dump it; never a password', async t => {
  const res = await as('viewer', { method: 'GET', url: '/api/targets' })
  t.equal(res.statusCode, 200)
  const { items } = res.json() as { items: Array<Record<string, unknown>> }
  const mine = items.find(i => i.name === 'default')
  t.match(mine, { host: cluster.host, port: cluster.port, database: 'targets_app', reachable: true, ok: true, serverVersion: /^15\.\d+/, pgDumpVersion: /^\d+\.\d+/ })
  t.notOk('problem' in (mine ?? {}))
  t.match(items.find(i => i.name === 'gone'), { host: '127.0.0.1', port: 1, reachable: false, ok: false, problem: { code: 'PG_CONNECTION_FAILED' } })
  t.notMatch(res.body, /Sekr1t-do-not-show/)
  t.notMatch(res.body, new RegExp(cluster.password))
  t.notOk(JSON.stringify(items).includes('password'), 'no password field at all')
})

t.test('GET /api/targets needs a login', async t => {
  const res = await app.inject({ method: 'GET', url: '/api/targets' })
  t.equal(res.statusCode, 401)
})
