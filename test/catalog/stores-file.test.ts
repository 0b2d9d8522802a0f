import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { AuditLog } from '../../server/audit/audit-log.ts'
import { TokenStore } from '../../server/auth/token-store.ts'
import { UsersStore } from '../../server/auth/users-store.ts'
import { ScheduleStore } from '../../server/schedules/schedule-store.ts'
import { auditConformance, scheduleStoreConformance, tokensConformance, usersConformance, type AuthCatalog } from './store-conformance.ts'

// The catalog stores' conformance suites over the file catalog in the backups dir (.pgkeep/).

const freshDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-file-catalog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const readIfAny = (path: string): string => { try { return readFileSync(path, 'utf8') } catch { return '' } }

const authCatalog = async (): Promise<AuthCatalog> => {
  const dir = freshDir()
  const users = new UsersStore(dir)
  const tokens = new TokenStore(dir)
  return { users, tokens, raw: async () => readIfAny(users.path) + readIfAny(tokens.path) }
}

t.test('users', async t => { usersConformance(t, authCatalog) })
t.test('tokens and sessions', async t => { tokensConformance(t, authCatalog) })
t.test('audit log', async t => { auditConformance(t, async () => new AuditLog(freshDir())) })
t.test('schedules', async t => {
  scheduleStoreConformance(t, async () => {
    const dir = freshDir()
    return { open: async () => await ScheduleStore.open(dir) }
  })
})
