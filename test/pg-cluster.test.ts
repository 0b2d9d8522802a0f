import t from 'tap'
import { startCluster } from './helpers/pg-cluster.ts'

t.test('the test harness starts a throwaway cluster that answers and requires a password over TCP', async t => {
  const cluster = await startCluster()
  t.teardown(cluster.stop)
  t.match(await cluster.psql('select version()'), /PostgreSQL \d+/)
  await cluster.createDatabase('Ünïcode db')
  t.match(await cluster.psql('select current_database()', 'Ünïcode db'), /Ünïcode db/)
})
