import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startServer } from '../../server/http/server.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { appConfig } from '../helpers/app.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'server_app', { rows: 10000, padding: 300 })

t.test('shutting the server down cancels a running dump cleanly and stops accepting connections', async t => {
  const base = testConfig(cluster, 'server_app')
  t.teardown(base.cleanup)
  const config = { ...appConfig(base), port: 0 }
  const server = await startServer(config, { logStream: { write () {} } })
  const service = server.app.backupService
  // the dump waits at the gate, so it is still running when the server closes, however fast the machine
  const gate = await holdDumpGate(cluster, 'server_app')
  t.teardown(gate.release)
  await server.app.users.add('ops', 'operator', 'ops password 1')
  const login = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ops', password: 'ops password 1' }) })
  const { token } = await login.json() as { token: string }
  const created = await fetch(`${server.url}/api/backup/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ compression: 'zstd', level: 19, format: 'plain' }),
  })
  t.equal(created.status, 202)
  const { backup } = await created.json() as { backup: { id: string } }
  await waitUntil(() => service.get(backup.id).status === 'running', 20_000, 'the dump to start')
  // what the SIGTERM/SIGINT handler calls
  await server.close()
  await server.closed
  const final = service.get(backup.id)
  t.equal(final.status, 'cancelled')
  t.notOk(existsSync(join(config.backupDir, `${final.name}.partial`)), 'partial file removed')
  t.match(readFileSync(join(config.backupDir, '.pgkeep', 'audit.jsonl'), 'utf8'), /"action":"backup.create"/, 'audit flushed')
  await t.rejects(fetch(`${server.url}/api/health`), 'no longer listening')
})
