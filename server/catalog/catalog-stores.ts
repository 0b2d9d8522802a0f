import type { Config } from '../config.ts'
import type { AuditStore } from '../audit/audit-log.ts'
import type { LoginAttemptCounter } from '../auth/login-attempts-pg.ts'
import type { ApiTokens } from '../auth/token-store.ts'
import type { UserAccounts } from '../auth/users-store.ts'
import type { StoredSchedules } from '../schedules/schedule-store.ts'
import type { CatalogDb } from './catalog-db.ts'

// The one place that picks between the file catalog (backupDir/.pgkeep) and the shared PostgreSQL catalog for
// users, tokens, login attempts, the audit log and schedules. Each class is loaded when picked: a CLI command
// that only writes an audit line loads neither the JWT library nor the pg driver.

/** The process's one catalog connection when config.catalog is set; the caller closes it. */
export async function openCatalog (config: Pick<Config, 'catalog'>): Promise<CatalogDb | undefined> {
  if (config.catalog === undefined) return undefined
  const { CatalogDb } = await import('./catalog-db.ts')
  return await CatalogDb.open(config.catalog)
}

export interface AuthStores {
  users: UserAccounts
  tokens: ApiTokens
  /** shared login attempt counts; absent = counted in this process (@fastify/rate-limit) */
  loginAttempts?: LoginAttemptCounter
}

export async function authStores (backupDir: string, catalog?: CatalogDb): Promise<AuthStores> {
  if (catalog === undefined) {
    const [{ UsersStore }, { TokenStore }] = await Promise.all([import('../auth/users-store.ts'), import('../auth/token-store.ts')])
    return { users: new UsersStore(backupDir), tokens: new TokenStore(backupDir) }
  }
  const [{ PgUsersStore }, { PgTokenStore }, { PgLoginAttempts }] = await Promise.all([
    import('../auth/users-store-pg.ts'), import('../auth/token-store-pg.ts'), import('../auth/login-attempts-pg.ts'),
  ])
  return { users: new PgUsersStore(catalog), tokens: new PgTokenStore(catalog), loginAttempts: new PgLoginAttempts(catalog) }
}

export async function auditStore (backupDir: string, catalog?: CatalogDb): Promise<AuditStore> {
  if (catalog === undefined) {
    const { AuditLog } = await import('../audit/audit-log.ts')
    return new AuditLog(backupDir)
  }
  const { PgAuditLog } = await import('../audit/audit-log-pg.ts')
  return new PgAuditLog(catalog)
}

export async function scheduleStore (backupDir: string, catalog?: CatalogDb): Promise<StoredSchedules> {
  if (catalog === undefined) {
    const { ScheduleStore } = await import('../schedules/schedule-store.ts')
    return await ScheduleStore.open(backupDir)
  }
  const { PgScheduleStore } = await import('../schedules/schedule-store-pg.ts')
  return await PgScheduleStore.open(catalog)
}
