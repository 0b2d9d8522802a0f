import { randomUUID } from 'node:crypto'
import t from 'tap'
import { PgAuditLog } from '../../server/audit/audit-log-pg.ts'
import { verifyJwt, type TokenClaims } from '../../server/auth/token-store.ts'
import { PgTokenStore } from '../../server/auth/token-store-pg.ts'
import { PgUsersStore } from '../../server/auth/users-store-pg.ts'
import { CatalogDb } from '../../server/catalog/catalog-db.ts'
import { ADMIN_PASSWORD, build, NO_LIMITS, TEST_JWT_SECRET } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { emptyCatalog } from './catalog-helpers.ts'

// Two instances (two CatalogDb, as two processes would have) on one catalog: what one decides about a user, a
// token, a session, a login attempt or the audit log holds on the other at once.

const cluster = await testCluster()
t.teardown(cluster.stop)
const DATABASE = 'catalog_cross_auth'
const catalog = await emptyCatalog(cluster, DATABASE)
await cluster.createDatabase('catalog_cross_target')
const [dbA, dbB, dbTest] = await Promise.all([1, 2, 3].map(async () => await CatalogDb.open(catalog.target)))
t.teardown(async () => { for (const db of [dbA, dbB, dbTest]) await db.close() })

const instance = (db: CatalogDb) => ({ users: new PgUsersStore(db), tokens: new PgTokenStore(db), audit: new PgAuditLog(db) })
const A = instance(dbA)
const B = instance(dbB)

t.test('a token revoked on A is refused on B at once; so is a session logged out, or ended by a password change, on A', async t => {
  await catalog.empty()
  const { token, info } = await A.tokens.create(TEST_JWT_SECRET, { name: 'ci', role: 'operator', createdBy: 'test' })
  const claims = verifyJwt(TEST_JWT_SECRET, token)
  t.match(await B.tokens.principalFor(claims, B.users), { username: 'token:ci', role: 'operator' }, 'B knows a token A created')
  await A.tokens.revoke(info.id)
  t.equal(await B.tokens.principalFor(claims, B.users), undefined, 'refused on B with no wait')

  await A.users.add('erin', 'admin', 'erin password')
  const session = async (): Promise<TokenClaims> => ({
    sub: 'erin', jti: randomUUID(), kind: 'session', gen: (await B.users.sessionUser('erin'))!.sessionStamp, exp: Math.floor(Date.now() / 1000) + 600,
  })
  const loggedOut = await session()
  const other = await session()
  t.ok(await B.tokens.principalFor(loggedOut, B.users))
  await A.tokens.revokeSession(loggedOut.jti, loggedOut.exp!)
  t.equal(await B.tokens.principalFor(loggedOut, B.users), undefined, 'logout on A ends the session on B')
  t.ok(await B.tokens.principalFor(other, B.users), 'the user\'s other session goes on')
  await A.users.setPassword('erin', 'erin password 2')
  t.equal(await B.tokens.principalFor(other, B.users), undefined, 'a password changed on A ends the sessions on B')
  await A.users.setRole('erin', 'viewer')
  t.same(await B.users.get('erin'), { username: 'erin', role: 'viewer' })
})

/**
 * Both changes in flight at once, by construction: the test holds the users table locked until both instances'
 * transactions wait for it, then lets them go.
 */
async function together<T> (changes: (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
  let settled!: Promise<PromiseSettledResult<T>[]>
  await dbTest.transaction(async client => {
    await client.query('LOCK TABLE pgkeep.users IN ACCESS EXCLUSIVE MODE')
    settled = Promise.allSettled(changes.map(change => change()))
    await waitUntil(async () => Number(await cluster.psql(
      `SELECT count(*) FROM pg_stat_activity WHERE datname = '${DATABASE}' AND wait_event_type = 'Lock'`, 'postgres')) >= changes.length,
    15_000, 'both changes waiting')
  })
  return await settled
}

t.test('A and B demoting the last two admins at the same time: exactly one succeeds, an admin is left', async t => {
  await catalog.empty()
  await A.users.add('ann', 'admin', 'ann password')
  await A.users.add('bea', 'admin', 'bea password')
  const results = await together([
    () => A.users.setRole('ann', 'viewer', { keepAnAdmin: true }),
    () => B.users.setRole('bea', 'operator', { keepAnAdmin: true }),
  ])
  t.equal(results.filter(r => r.status === 'fulfilled').length, 1)
  t.match(results.find(r => r.status === 'rejected'), { reason: { code: 'CONFLICT', message: /no admin would be left/ } })
  t.equal((await A.users.list()).filter(u => u.role === 'admin').length, 1)
})

t.test('A and B removing the last two admins at the same time: exactly one succeeds', async t => {
  await catalog.empty()
  await A.users.add('ann', 'admin', 'ann password')
  await A.users.add('bea', 'admin', 'bea password')
  const results = await together([
    () => A.users.remove('ann', { keepAnAdmin: true }),
    () => B.users.remove('bea', { keepAnAdmin: true }),
  ])
  t.equal(results.filter(r => r.status === 'fulfilled').length, 1)
  t.same((await B.users.list()).map(u => u.role), ['admin'])
})

t.test('the audit entries of both instances are one log, newest first, paged without gaps or repeats', async t => {
  await catalog.empty()
  for (let i = 0; i < 6; i++) await (i % 2 === 0 ? A : B).audit.append({ user: i % 2 === 0 ? 'on-a' : 'on-b', ip: 'local', action: `step${i}`, outcome: 'ok' })
  t.same((await B.audit.page(1, 4)).items.map(e => [e.user, e.action]), [['on-b', 'step5'], ['on-a', 'step4'], ['on-b', 'step3'], ['on-a', 'step2']])
  t.same((await A.audit.page(2, 4)).items.map(e => e.action), ['step1', 'step0'])

  await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? A : B).audit.append({ user: 'u', ip: 'local', action: `c${i}`, outcome: 'ok' })))
  const seen: string[] = []
  for (let page = 1; ; page++) {
    const p = await (page % 2 === 0 ? A : B).audit.page(page, 7)
    t.equal(p.total, 46)
    if (p.items.length === 0) break
    seen.push(...p.items.map(e => e.action))
  }
  t.equal(seen.length, 46)
  t.equal(new Set(seen).size, 46)
})

t.test('over HTTP, two apps on one catalog: login limit, logout and token revocation hold across them', async t => {
  await catalog.empty()
  const limits = { deps: { rateLimits: { ...NO_LIMITS, login: 3 } } }
  const configA = testConfig(cluster, 'catalog_cross_target')
  const configB = testConfig(cluster, 'catalog_cross_target')
  t.teardown(() => { configA.cleanup(); configB.cleanup() })
  const appA = await build(t, configA, { deps: { ...limits.deps, catalog: dbA } })
  const appB = await build(t, configB, { deps: { ...limits.deps, catalog: dbB } })
  // B's build replaced the suite's tokens in the shared catalog: B's are the live ones, on either app
  const asAdmin = (app: typeof appA, opts: { method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object }) =>
    app.app.inject({ ...opts, headers: { authorization: `Bearer ${appB.token.admin}` } })
  const login = (app: typeof appA, password: string) => app.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password } })

  t.test('three failed logins spread over A and B use up the limit on both', async t => {
    t.equal((await login(appA, 'wrong password 1')).statusCode, 401)
    t.equal((await login(appB, 'wrong password 2')).statusCode, 401)
    t.equal((await login(appA, 'wrong password 3')).statusCode, 401)
    const onB = await login(appB, ADMIN_PASSWORD)
    t.equal(onB.statusCode, 429, 'B counted A\'s attempts')
    t.match(onB.json(), { code: 'RATE_LIMITED', message: /too many login attempts for "root"/ })
    t.ok(Number(onB.headers['retry-after']) >= 1)
    t.equal((await login(appA, ADMIN_PASSWORD)).statusCode, 429)
    await cluster.psql('DELETE FROM pgkeep.login_attempts', DATABASE)
  })

  t.test('a session logged out on A is refused on B; a token revoked on A too; B\'s audit log shows A\'s entries', async t => {
    const res = await login(appA, ADMIN_PASSWORD)
    t.equal(res.statusCode, 200)
    const bearer = { authorization: `Bearer ${res.json().token}` }
    t.equal((await appB.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer })).statusCode, 200)
    t.equal((await appA.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer })).statusCode, 200)
    t.equal((await appB.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer })).statusCode, 401)

    const created = await asAdmin(appA, { method: 'POST', url: '/api/tokens', payload: { name: 'deploy', role: 'viewer' } })
    t.equal(created.statusCode, 201)
    const script = { authorization: `Bearer ${created.json().token}` }
    t.same((await appB.app.inject({ method: 'GET', url: '/api/auth/me', headers: script })).json(), { username: 'token:deploy', role: 'viewer' })
    t.equal((await asAdmin(appA, { method: 'DELETE', url: `/api/tokens/${created.json().info.id}` })).statusCode, 200)
    t.equal((await appB.app.inject({ method: 'GET', url: '/api/auth/me', headers: script })).statusCode, 401)

    const audit = await asAdmin(appB, { method: 'GET', url: '/api/audit?pageSize=500' })
    const actions = audit.json().items.map((e: { action: string }) => e.action)
    for (const action of ['login', 'logout', 'token.create', 'token.revoke']) t.ok(actions.includes(action), `${action}, written by A, read on B`)
    t.notMatch(audit.body, created.json().token.split('.')[2], 'no token in the audit log')
    t.notMatch(await catalog.dump(), ADMIN_PASSWORD, 'no password in the catalog')
  })
})
