import type { Test } from 'tap'
import type { Config } from '../../server/config.ts'
import type { AppDeps } from '../../server/http/app.ts'
import { build, type TestApp } from '../helpers/app.ts'
import { TEST_PASSWORD, type TestCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'

export { ADMIN_PASSWORD, auditLines, TEST_JWT_SECRET as SECRET, type TestApp } from '../helpers/app.ts'
export { TEST_PASSWORD }

/** build(t) over a fresh backups dir on `database` of the cluster (removed at teardown). */
export async function setupApp (t: Test, cluster: TestCluster, database: string, deps: AppDeps = {}, patch: Partial<Config> = {}): Promise<TestApp> {
  const base = testConfig(cluster, database)
  t.teardown(base.cleanup)
  return await build(t, { ...base, logLevel: 'info', ...patch }, { deps })
}
