import type { Target } from '../../server/config.ts'
import type { TestCluster } from '../helpers/pg-cluster.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'

/** The catalog tables this branch owns (users, tokens, audit, schedules). */
const TABLES = ['users', 'tokens', 'revoked_sessions', 'login_attempts', 'audit', 'schedules', 'schedule_state']

export interface TestCatalog {
  target: Target
  /** Empties the tables, so the next suite starts from nothing. */
  empty (): Promise<void>
  /** Every row of every table, as text: what someone reading the catalog would see. */
  dump (): Promise<string>
}

/** A migrated catalog in a database of its own on the run's cluster. */
export async function emptyCatalog (cluster: TestCluster, database: string): Promise<TestCatalog> {
  await cluster.createDatabase(database)
  const target: Target = { name: 'catalog', host: cluster.host, port: cluster.port, user: cluster.user, database, password: cluster.password }
  await (await CatalogDb.open(target)).close()
  return {
    target,
    empty: async () => { await cluster.psql(`TRUNCATE ${TABLES.map(n => `pgkeep.${n}`).join(', ')} RESTART IDENTITY`, database) },
    dump: async () => {
      let text = ''
      for (const n of TABLES) text += await cluster.psql(`SELECT row_to_json(x) FROM pgkeep.${n} x`, database)
      return text
    },
  }
}
