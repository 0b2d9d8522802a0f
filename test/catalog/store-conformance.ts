import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { AuditStore } from '../../server/audit/audit-log.ts'
import { verifyJwt, type ApiTokens, type TokenClaims } from '../../server/auth/token-store.ts'
import type { UserAccounts } from '../../server/auth/users-store.ts'
import { MAX_MISSED_KEPT, type ScheduleState, type StoredSchedule, type StoredSchedules } from '../../server/schedules/schedule-store.ts'

// One suite per catalog store, run over every implementation: the files in the backups dir
// (stores-file.test.ts) and the shared PostgreSQL catalog (stores-pg.test.ts). Each `fresh` gives empty stores.

export const SECRET = 'a-conformance-secret-that-is-long-enough-0123'

export interface AuthCatalog {
  users: UserAccounts
  tokens: ApiTokens
  /** everything the store keeps, as text: what someone reading the files or tables would see */
  raw (): Promise<string>
}

export function usersConformance (t: Test, fresh: () => Promise<AuthCatalog>): void {
  t.test('a user added with a password can log in with it and not with another; the password is not kept', async t => {
    const { users, raw } = await fresh()
    t.equal(await users.isEmpty(), true)
    await users.add('alice', 'operator', 'correct horse battery')
    await users.add('bob', 'viewer', 'correct horse battery')
    t.match(await users.verifyPassword('alice', 'correct horse battery'), { username: 'alice', role: 'operator', sessionStamp: String })
    t.equal(await users.verifyPassword('alice', 'wrong password!'), undefined)
    t.equal(await users.verifyPassword('nobody', 'correct horse battery'), undefined)
    t.same(await users.list(), [{ username: 'alice', role: 'operator' }, { username: 'bob', role: 'viewer' }], 'in the order added')
    t.same(await users.get('bob'), { username: 'bob', role: 'viewer' })
    t.equal(await users.get('carol'), undefined)
    t.equal(await users.isEmpty(), false)
    const stored = await raw()
    t.notMatch(stored, 'correct horse battery')
    t.equal(stored.match(/scrypt\$/g)?.length, 2, 'two salted scrypt hashes')
  })

  t.test('bad usernames, roles, short passwords and duplicates are refused with a coded error', async t => {
    const { users } = await fresh()
    await t.rejects(users.add('../etc/passwd', 'admin', 'long enough pw'), { code: 'INVALID_INPUT' })
    await t.rejects(users.add('carol', 'root' as 'admin', 'long enough pw'), { code: 'INVALID_INPUT' })
    await t.rejects(users.add('carol', 'admin', 'short'), { code: 'INVALID_INPUT' })
    await users.add('carol', 'admin', 'long enough pw')
    await t.rejects(users.add('carol', 'viewer', 'long enough pw'), { code: 'CONFLICT' })
    t.equal((await users.list()).length, 1)
  })

  t.test('passwd changes the password, role the role, remove deletes the user; unknown names are NOT_FOUND', async t => {
    const { users } = await fresh()
    await users.add('dave', 'viewer', 'first password')
    await users.setPassword('dave', 'second password')
    t.equal(await users.verifyPassword('dave', 'first password'), undefined)
    t.ok(await users.verifyPassword('dave', 'second password'))
    await t.rejects(users.setPassword('dave', 'short'), { code: 'INVALID_INPUT' })
    await users.setRole('dave', 'operator')
    t.same(await users.get('dave'), { username: 'dave', role: 'operator' })
    await users.remove('dave')
    t.equal(await users.isEmpty(), true)
    await t.rejects(users.remove('dave'), { code: 'NOT_FOUND' })
    await t.rejects(users.setPassword('dave', 'third password'), { code: 'NOT_FOUND' })
    await t.rejects(users.setRole('dave', 'admin'), { code: 'NOT_FOUND' })
  })

  t.test('the session stamp changes with passwd, role, and remove + add', async t => {
    const { users } = await fresh()
    await users.add('finn', 'viewer', 'finn password')
    const stamp = async (): Promise<string> => (await users.sessionUser('finn'))!.sessionStamp
    const seen = [await stamp()]
    t.equal(await stamp(), seen[0], 'stable while nothing changes')
    await users.setPassword('finn', 'finn password 2')
    seen.push(await stamp())
    await users.setRole('finn', 'operator')
    seen.push(await stamp())
    await users.remove('finn')
    await users.add('finn', 'operator', 'finn password 2')
    seen.push(await stamp())
    t.equal(new Set(seen).size, 4, 'every change gave a new stamp')
    t.equal((await users.verifyPassword('finn', 'finn password 2'))?.sessionStamp, seen[3], 'login carries the current stamp')
  })

  t.test('keepAnAdmin refuses to remove or demote the last admin; without it (the CLI) it is allowed', async t => {
    const { users } = await fresh()
    await users.add('root', 'admin', 'root password')
    await users.add('ops', 'operator', 'ops password')
    await t.rejects(users.remove('root', { keepAnAdmin: true }), { code: 'CONFLICT', message: /no admin would be left/ })
    await t.rejects(users.setRole('root', 'viewer', { keepAnAdmin: true }), { code: 'CONFLICT' })
    await users.setRole('ops', 'admin', { keepAnAdmin: true })
    await users.setRole('root', 'viewer', { keepAnAdmin: true })
    t.same(await users.get('root'), { username: 'root', role: 'viewer' })
    await users.setRole('ops', 'viewer')
    t.same((await users.list()).map(u => u.role), ['viewer', 'viewer'], 'the CLI may leave no admin')
  })

  t.test('concurrent adds all land', async t => {
    const { users } = await fresh()
    await Promise.all(['u1', 'u2', 'u3', 'u4'].map(u => users.add(u, 'viewer', 'password ' + u)))
    t.same((await users.list()).map(u => u.username).sort(), ['u1', 'u2', 'u3', 'u4'])
  })
}

export function tokensConformance (t: Test, fresh: () => Promise<AuthCatalog>): void {
  t.test('an API token carries its role until it is revoked; the token itself is never kept', async t => {
    const { tokens, users, raw } = await fresh()
    const { token, info } = await tokens.create(SECRET, { name: 'ci', role: 'operator', createdBy: 'admin', expiresInSeconds: 3600 })
    t.match(info, { id: String, name: 'ci', role: 'operator', createdBy: 'admin', createdAt: String, expiresAt: String })
    const claims = verifyJwt(SECRET, token)
    t.equal(claims.jti, info.id)
    t.same(await tokens.principalFor(claims, users), { username: 'token:ci', role: 'operator', kind: 'api', jti: info.id, exp: claims.exp })
    t.same(await tokens.get(info.id), info)
    t.notMatch(await raw(), token.split('.')[2])
    const revoked = await tokens.revoke(info.id)
    t.match(revoked, { id: info.id, revokedAt: String })
    t.equal(await tokens.principalFor(claims, users), undefined)
    t.equal((await tokens.revoke(info.id)).revokedAt, revoked.revokedAt, 'revoking again keeps the first time')
  })

  t.test('one live token per name; revoke by name takes the live one; unknown ids grant nothing', async t => {
    const { tokens, users } = await fresh()
    await tokens.create(SECRET, { name: 'ci', role: 'viewer', createdBy: 'a' })
    await t.rejects(tokens.create(SECRET, { name: 'ci', role: 'viewer', createdBy: 'a' }), { code: 'CONFLICT' })
    await t.rejects(tokens.create(SECRET, { name: '../x', role: 'viewer', createdBy: 'a' }), { code: 'INVALID_INPUT' })
    await t.rejects(tokens.create(SECRET, { name: 'x', role: 'root' as 'admin', createdBy: 'a' }), { code: 'INVALID_INPUT' })
    const first = await tokens.revoke('ci')
    const second = await tokens.create(SECRET, { name: 'ci', role: 'admin', createdBy: 'a' })
    t.same((await tokens.list()).map(x => [x.id, x.revokedAt !== undefined]), [[first.id, true], [second.info.id, false]], 'in the order created')
    t.equal((await tokens.revoke('ci')).id, second.info.id)
    await t.rejects(tokens.revoke('ci'), { code: 'NOT_FOUND' }, 'no live token of that name is left')
    await t.rejects(tokens.revoke('nope'), { code: 'NOT_FOUND' })
    const ghost: TokenClaims = { sub: 'token:ghost', jti: 'not-in-store', kind: 'api', role: 'admin' }
    t.equal(await tokens.principalFor(ghost, users), undefined)
    t.equal(await tokens.get('not-in-store'), undefined)
  })

  t.test('a session follows its user: gone when logged out, on passwd, or when the user is removed', async t => {
    const { tokens, users } = await fresh()
    await users.add('erin', 'admin', 'erin password')
    const session = async (): Promise<TokenClaims> => ({
      sub: 'erin', jti: randomUUID(), kind: 'session', gen: (await users.sessionUser('erin'))!.sessionStamp, exp: Math.floor(Date.now() / 1000) + 60,
    })
    const loggedOut = await session()
    t.match(await tokens.principalFor(loggedOut, users), { username: 'erin', role: 'admin', kind: 'session' })
    await tokens.revokeSession(loggedOut.jti, loggedOut.exp!)
    await tokens.revokeSession(loggedOut.jti, loggedOut.exp!)
    t.equal(await tokens.principalFor(loggedOut, users), undefined)
    const other = await session()
    t.ok(await tokens.principalFor(other, users), 'another session of the same user is untouched')
    await users.setPassword('erin', 'erin password 2')
    t.equal(await tokens.principalFor(other, users), undefined)
    const last = await session()
    await users.remove('erin')
    t.equal(await tokens.principalFor(last, users), undefined)
    t.equal(await tokens.principalFor({ sub: 'erin', jti: randomUUID(), kind: 'session' }, users), undefined, 'no stamp')
  })
}

export function auditConformance (t: Test, fresh: () => Promise<AuditStore>): void {
  t.test('entries come back newest first, paged, with every field as written', async t => {
    const log = await fresh()
    t.teardown(() => log.close())
    for (let i = 0; i < 5; i++) await log.append({ user: 'alice', role: 'admin', door: 'http', ip: '127.0.0.1', action: `a${i}`, outcome: 'ok' })
    await log.append({
      user: 'schedule:nightly', door: 'schedule', ip: 'local', action: 'backup.cleanup', outcome: 'failed', code: 'INTERNAL',
      backupId: undefined, deleted: [{ id: 'b-3', name: 'x.dump', reason: 'old' }], time: '2026-01-02T03:04:05.678Z',
    })
    const first = await log.page(1, 2)
    t.same(first.items, [
      { time: '2026-01-02T03:04:05.678Z', user: 'schedule:nightly', door: 'schedule', ip: 'local', action: 'backup.cleanup', outcome: 'failed', code: 'INTERNAL', deleted: [{ id: 'b-3', name: 'x.dump', reason: 'old' }] },
      { time: first.items[1].time, user: 'alice', role: 'admin', door: 'http', ip: '127.0.0.1', action: 'a4', outcome: 'ok' },
    ])
    t.notOk('backupId' in first.items[0], 'an undefined field is not written')
    t.match(first, { total: 6, page: 1, pageSize: 2 })
    t.same((await log.page(3, 2)).items.map(e => e.action), ['a1', 'a0'])
    t.same((await log.page(4, 2)).items, [])
  })

  t.test('concurrent appends are all kept, each once', async t => {
    const log = await fresh()
    t.teardown(() => log.close())
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ user: 'u', ip: '::1', action: `x${i}`, outcome: 'ok' })))
    await log.flush()
    const page = await log.page(1, 100)
    t.equal(page.total, 50)
    t.equal(new Set(page.items.map(e => e.action)).size, 50)
  })
}

const nightly = (extra: Partial<StoredSchedule> = {}): StoredSchedule => ({
  name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', backup: { compression: 'zstd', level: 3 }, retention: { keepLast: 7 },
  enabled: true, createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'alice', ...extra,
})

/** open() gives a store over the same place each time (a restart); the first call finds it empty. */
export function scheduleStoreConformance (t: Test, fresh: () => Promise<{ open: () => Promise<StoredSchedules> }>): void {
  t.test('schedules and their state are kept across a reopen; a schedule removed takes its state along', async t => {
    const { open } = await fresh()
    const store = await open()
    t.same(store.schedules(), [])
    await store.putSchedule(nightly())
    await store.putSchedule({ ...nightly(), name: 'hourly', cron: '0 * * * *' })
    await store.putSchedule(nightly({ enabled: false }))
    const state: ScheduleState = { lastTickAt: '2026-01-02T03:00:00.000Z', lastRunAt: '2026-01-02T03:00:01.000Z', lastBackupId: 'b-1', missed: [] }
    await store.putState('nightly', state)
    await store.putState('hourly', { lastTickAt: '2026-01-02T03:00:00.000Z', missed: [] })
    await store.putState('config-only', { lastTickAt: '2026-01-02T03:00:00.000Z', missed: [] })
    await store.flush()
    await store.close?.()

    const again = await open()
    t.teardown(async () => { await again.close?.() })
    t.same(again.schedules().sort((a, b) => a.name.localeCompare(b.name)), [{ ...nightly(), name: 'hourly', cron: '0 * * * *' }, nightly({ enabled: false })])
    t.same(again.state('nightly'), state)
    await again.removeSchedule('hourly')
    t.same(again.schedules().map(s => s.name), ['nightly'])
    t.equal(again.state('hourly'), undefined)
    await again.pruneState(new Set(['nightly']))
    t.equal(again.state('config-only'), undefined)
    t.same(again.state('nightly'), state)
  })

  t.test('state keeps the newest missed runs only; what a caller changes in a copy is not kept', async t => {
    const { open } = await fresh()
    const store = await open()
    t.teardown(async () => { await store.close?.() })
    const missed = Array.from({ length: MAX_MISSED_KEPT + 5 }, (_, i) => ({ scheduledAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), reason: 'downtime' as const, detectedAt: '2026-01-02T00:00:00.000Z', count: 1 }))
    await store.putState('nightly', { lastTickAt: '2026-01-02T00:00:00.000Z', missed })
    t.same(store.state('nightly')?.missed, missed.slice(0, MAX_MISSED_KEPT))
    await store.putSchedule(nightly())
    store.schedules()[0].cron = 'changed'
    store.state('nightly')!.missed.length = 0
    t.equal(store.schedules()[0].cron, '0 3 * * *')
    t.equal(store.state('nightly')?.missed.length, MAX_MISSED_KEPT)
    await store.close?.()
    const again = await open()
    t.teardown(async () => { await again.close?.() })
    t.equal(again.state('nightly')?.missed.length, MAX_MISSED_KEPT)
  })
}
