import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { AuditLog } from '../../server/audit/audit-log.ts'
import { PgAuditLog } from '../../server/audit/audit-log-pg.ts'
import { TokenStore, verifyJwt, type TokenClaims } from '../../server/auth/token-store.ts'
import { PgTokenStore } from '../../server/auth/token-store-pg.ts'
import { UsersStore } from '../../server/auth/users-store.ts'
import { PgUsersStore } from '../../server/auth/users-store-pg.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { AUTH_IMPORTERS, importAudit, importSchedules, importTokens, importUsers } from '../../server/catalog/import-auth.ts'
import { ScheduleStore, type StoredSchedule } from '../../server/schedules/schedule-store.ts'
import { PgScheduleStore } from '../../server/schedules/schedule-store-pg.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { emptyCatalog } from './catalog-helpers.ts'
import { SECRET } from './store-conformance.ts'

// pgkeep catalog import, for users, tokens + logged-out sessions, the audit log and schedules: a file catalog
// written by the file stores moves into PostgreSQL with nothing lost, sessions and tokens still valid, and a
// second run imports nothing.

const cluster = await testCluster()
t.teardown(cluster.stop)
const catalog = await emptyCatalog(cluster, 'catalog_import_auth')
const db = await CatalogDb.open(catalog.target)
t.teardown(() => db.close())

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-import-auth-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// the file catalog, as a server running on files would have left it
const fileUsers = new UsersStore(dir)
const fileTokens = new TokenStore(dir)
await fileUsers.add('root', 'admin', 'root password 1')
await fileUsers.add('vic', 'viewer', 'vic password 1')
await fileUsers.setRole('vic', 'operator')
const nowSec = Math.floor(Date.now() / 1000)
const session = async (jti: string): Promise<TokenClaims> => ({ sub: 'vic', jti, kind: 'session', gen: (await fileUsers.sessionUser('vic'))!.sessionStamp, exp: nowSec + 600 })
const liveSession = await session('live-session')
const loggedOut = await session('logged-out')
await fileTokens.revokeSession(loggedOut.jti, loggedOut.exp!)
await fileTokens.revokeSession('long-expired', nowSec - 60)
const live = await fileTokens.create(SECRET, { name: 'ci', role: 'operator', createdBy: 'root' })
const gone = await fileTokens.create(SECRET, { name: 'old', role: 'admin', createdBy: 'root', expiresInSeconds: 3600 })
await fileTokens.revoke('old')
const fileAudit = new AuditLog(dir)
for (let i = 0; i < 5; i++) await fileAudit.append({ user: 'root', role: 'admin', door: 'http', ip: '127.0.0.1', action: `a${i}`, outcome: 'ok' })
await fileAudit.close()
appendFileSync(fileAudit.path, '{"time":"2026-01-01T00:00:00Z","us\n')
const fileSchedules = await ScheduleStore.open(dir)
const nightly: StoredSchedule = { name: 'nightly', cron: '0 3 * * *', backup: { compression: 'none' }, retention: { keepLast: 3 }, enabled: true, createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'root' }
await fileSchedules.putSchedule(nightly)
await fileSchedules.putState('nightly', { lastTickAt: '2026-01-02T03:00:00.000Z', lastBackupId: 'b-1', missed: [{ scheduledAt: '2026-01-01T03:00:00.000Z', reason: 'downtime', detectedAt: '2026-01-02T00:00:00.000Z', count: 1 }] })
await fileSchedules.putState('from-config', { lastTickAt: '2026-01-02T03:00:00.000Z', missed: [] })
await fileSchedules.flush()

const runAll = async (dryRun: boolean): Promise<Record<string, { imported: number, skipped: number }>> =>
  Object.fromEntries(await Promise.all(AUTH_IMPORTERS.map(async i => [i.kind, await i.run(dir, db, dryRun)])))

t.test('a dry run counts what it would import and writes nothing', async t => {
  t.same(await runAll(true), {
    users: { imported: 2, skipped: 0 },
    tokens: { imported: 3, skipped: 1 },
    audit: { imported: 5, skipped: 1 },
    schedules: { imported: 3, skipped: 0 },
  })
  t.equal(await new PgUsersStore(db).isEmpty(), true)
  t.equal((await new PgAuditLog(db).page()).total, 0)
})

t.test('everything moves; sessions, tokens and logouts issued on files hold on the catalog', async t => {
  t.same(await runAll(false), {
    users: { imported: 2, skipped: 0 },
    tokens: { imported: 3, skipped: 1 },
    audit: { imported: 5, skipped: 1 },
    schedules: { imported: 3, skipped: 0 },
  })
  const users = new PgUsersStore(db)
  const tokens = new PgTokenStore(db)
  t.same(await users.list(), await fileUsers.list())
  t.ok(await users.verifyPassword('root', 'root password 1'), 'the password hash came along')
  t.equal((await users.sessionUser('vic'))?.sessionStamp, (await fileUsers.sessionUser('vic'))?.sessionStamp)
  t.match(await tokens.principalFor(liveSession, users), { username: 'vic', role: 'operator', kind: 'session' }, 'a session issued on files still works')
  t.equal(await tokens.principalFor(loggedOut, users), undefined, 'a logout on files still holds')
  t.same(await tokens.list(), await fileTokens.list())
  t.match(await tokens.principalFor(verifyJwt(SECRET, live.token), users), { username: 'token:ci', role: 'operator' })
  t.equal(await tokens.principalFor(verifyJwt(SECRET, gone.token), users), undefined, 'a revoked token stays revoked')

  const fromFile = await new AuditLog(dir).page(1, 50)
  const moved = await new PgAuditLog(db).page(1, 50)
  t.same(moved.items, fromFile.items, 'same entries, same order')

  const schedules = await PgScheduleStore.open(db)
  t.teardown(() => schedules.close())
  t.same(schedules.schedules(), [nightly])
  t.same(schedules.state('nightly'), fileSchedules.state('nightly'))
  t.same(schedules.state('from-config'), fileSchedules.state('from-config'))
})

t.test('a second run imports nothing; lines appended to the audit log since are the only new ones', async t => {
  t.same(await runAll(false), {
    users: { imported: 0, skipped: 2 },
    tokens: { imported: 0, skipped: 4 },
    audit: { imported: 0, skipped: 6 },
    schedules: { imported: 0, skipped: 3 },
  })
  const more = new AuditLog(dir)
  await more.append({ user: 'root', ip: 'local', action: 'late', outcome: 'ok' })
  await more.close()
  t.same(await importAudit(dir, db, false), { imported: 1, skipped: 6 })
  t.equal((await new PgAuditLog(db).page(1, 1)).items[0].action, 'late')
})

t.test('a backups dir without a file catalog imports nothing', async t => {
  const empty = mkdtempSync(join(tmpdir(), 'pgkeep-import-empty-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  for (const run of [importUsers, importTokens, importAudit, importSchedules]) t.same(await run(empty, db, false), { imported: 0, skipped: 0 })
})
