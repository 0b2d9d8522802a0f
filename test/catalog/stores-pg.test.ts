import t from 'tap'
import { PgAuditLog } from '../../server/audit/audit-log-pg.ts'
import { PgTokenStore } from '../../server/auth/token-store-pg.ts'
import { PgUsersStore } from '../../server/auth/users-store-pg.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { PgScheduleStore } from '../../server/schedules/schedule-store-pg.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { emptyCatalog } from './catalog-helpers.ts'
import { auditConformance, scheduleStoreConformance, tokensConformance, usersConformance, type AuthCatalog } from './store-conformance.ts'

// The catalog stores' conformance suites over the shared PostgreSQL catalog.

const cluster = await testCluster()
t.teardown(cluster.stop)
const catalog = await emptyCatalog(cluster, 'catalog_stores_pg')
const db = await CatalogDb.open(catalog.target)
t.teardown(() => db.close())

const authCatalog = async (): Promise<AuthCatalog> => {
  await catalog.empty()
  return { users: new PgUsersStore(db), tokens: new PgTokenStore(db), raw: catalog.dump }
}

t.test('users', async t => { usersConformance(t, authCatalog) })
t.test('tokens and sessions', async t => { tokensConformance(t, authCatalog) })
t.test('audit log', async t => {
  auditConformance(t, async () => {
    await catalog.empty()
    return new PgAuditLog(db)
  })
})
t.test('schedules', async t => {
  scheduleStoreConformance(t, async () => {
    await catalog.empty()
    return { open: async () => await PgScheduleStore.open(db) }
  })
})
