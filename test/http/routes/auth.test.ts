import t from 'tap'
import { signJwt } from '../../../server/auth/token-store.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { ADMIN_PASSWORD, auditLines, SECRET, setupApp, TEST_PASSWORD } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('auth_app')
const { app, logs, token, as } = await setupApp(t, cluster, 'auth_app', { rateLimits: { global: 100_000, create: 100_000, login: 5, loginPerUser: 8 } })

const login = (username: string, password: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, headers })

t.test('login returns a bearer token and sets an HttpOnly SameSite=Strict cookie; both authenticate', async t => {
  const res = await login('root', ADMIN_PASSWORD)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.user, { username: 'root', role: 'admin' })
  const cookie = res.cookies.find(c => c.name === 'pgkeep_session')
  t.ok(cookie)
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Strict')
  t.equal(cookie?.path, '/')
  t.notOk(cookie?.secure, 'not Secure over plain http')
  const byCookie = await app.inject({ method: 'GET', url: '/api/auth/me', cookies: { pgkeep_session: cookie!.value } })
  t.same(byCookie.json(), { username: 'root', role: 'admin' })
  const byBearer = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${body.token}` } })
  t.same(byBearer.json(), { username: 'root', role: 'admin' })
})

t.test('the cookie is Secure when the request came over https', async t => {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password: ADMIN_PASSWORD }, remoteAddress: '10.9.9.9', headers: { 'x-forwarded-proto': 'https' } })
  // trustProxy is off here, so a forged header must not flip it
  t.notOk(res.cookies.find(c => c.name === 'pgkeep_session')?.secure)
})

t.test('behind a trusted TLS proxy the cookie gets Secure', async t => {
  const proxied = await setupApp(t, cluster, 'auth_app', {}, { trustProxy: 1 })
  const res = await proxied.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password: ADMIN_PASSWORD }, headers: { 'x-forwarded-proto': 'https' } })
  t.equal(res.statusCode, 200)
  t.equal(res.cookies.find(c => c.name === 'pgkeep_session')?.secure, true)
})

t.test('a wrong password or unknown user is 401 with the error shape and no hint which one', async t => {
  const wrong = await login('root', 'not the password', { 'x-test': 'a' })
  const unknown = await login('ghost', 'not the password')
  for (const res of [wrong, unknown]) {
    t.equal(res.statusCode, 401)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(res.json().code, 'UNAUTHORIZED')
    t.notOk(res.cookies.length)
  }
  t.equal(wrong.json().message, unknown.json().message)
})

t.test('logins are audited, ok and failed, with user, ip and outcome', async t => {
  const lines = (await auditLines(app)).filter(l => l.action === 'login')
  t.ok(lines.some(l => l.user === 'root' && l.outcome === 'ok' && l.role === 'admin' && typeof l.ip === 'string'))
  t.ok(lines.some(l => l.user === 'ghost' && l.outcome === 'denied'))
})

t.test('brute force on one account gets 429 RATE_LIMITED, other accounts still log in', async t => {
  await app.users.add('target', 'viewer', 'target password')
  const codes: number[] = []
  for (let i = 0; i < 7; i++) codes.push((await login('target', `guess ${i}`, {})).statusCode)
  t.same(codes.slice(0, 5), [401, 401, 401, 401, 401])
  t.same(codes.slice(5), [429, 429])
  const limited = await login('target', 'target password')
  t.equal(limited.statusCode, 429, 'even the right password waits out the window')
  t.equal(limited.json().code, 'RATE_LIMITED')
  await app.users.add('bystander', 'viewer', 'bystander password')
  t.equal((await login('bystander', 'bystander password')).statusCode, 200)
})

t.test('a refused login is audited under the username it tried, not as anonymous', async t => {
  const refused = (await auditLines(app)).filter(l => l.action === 'login' && l.code === 'RATE_LIMITED')
  t.ok(refused.length >= 2)
  t.ok(refused.every(l => l.user === 'target' && l.outcome === 'denied' && l.ip === '127.0.0.1'), JSON.stringify(refused[0]))
})

t.test('guesses from many addresses at one account stop at the per-username limit; the account\'s other users are unaffected', async t => {
  await app.users.add('spread', 'viewer', 'spread password')
  const codes: number[] = []
  for (let i = 0; i < 10; i++) {
    codes.push((await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'spread', password: `guess ${i}` }, remoteAddress: `198.51.100.${i + 1}` })).statusCode)
  }
  t.same(codes, [401, 401, 401, 401, 401, 401, 401, 401, 429, 429], 'loginPerUser is 8 here; each address tried once')
  await app.users.add('neighbour', 'viewer', 'neighbour password')
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'neighbour', password: 'neighbour password' }, remoteAddress: '198.51.100.1' })).statusCode, 200)
})

t.test('no token, a malformed header, a forged, an expired or a revoked token: 401', async t => {
  const forged = signJwt('some-other-secret-some-other-secret-xx', { sub: 'root', jti: 'f', kind: 'session' })
  const expired = signJwt(SECRET, { sub: 'root', jti: 'e', kind: 'session', exp: Math.floor(Date.now() / 1000) - 5 })
  const { token: revoked, info } = await app.tokens.create(SECRET, { name: 'to-revoke', role: 'admin', createdBy: 'test' })
  await app.tokens.revoke(info.id)
  const cases: Record<string, Record<string, string>> = {
    none: {},
    malformed: { authorization: 'Basic cm9vdDpwdw==' },
    garbage: { authorization: 'Bearer not.a.jwt' },
    forged: { authorization: `Bearer ${forged}` },
    expired: { authorization: `Bearer ${expired}` },
    revoked: { authorization: `Bearer ${revoked}` },
  }
  for (const [name, headers] of Object.entries(cases)) {
    const res = await app.inject({ method: 'GET', url: '/api/auth/me', headers })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'UNAUTHORIZED', name)
  }
})

t.test('logout ends the session: cookie cleared and the same token refused afterwards', async t => {
  await app.users.add('leaver', 'operator', 'leaver password')
  const { token: session } = (await login('leaver', 'leaver password')).json()
  const headers = { authorization: `Bearer ${session}` }
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers })).statusCode, 200)
  const out = await app.inject({ method: 'POST', url: '/api/auth/logout', headers })
  t.equal(out.statusCode, 200)
  const cleared = out.cookies.find(c => c.name === 'pgkeep_session')
  t.equal(cleared?.value, '')
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers })).statusCode, 401)
  t.ok((await auditLines(app)).some(l => l.action === 'logout' && l.user === 'leaver' && l.outcome === 'ok'))
})

t.test('a removed user or a demoted one loses access at once', async t => {
  await app.users.add('temp', 'admin', 'temp password')
  const { token: session } = (await login('temp', 'temp password')).json()
  const headers = { authorization: `Bearer ${session}` }
  t.equal((await app.inject({ method: 'GET', url: '/api/audit', headers })).statusCode, 200)
  await app.users.setRole('temp', 'viewer')
  t.equal((await app.inject({ method: 'GET', url: '/api/audit', headers })).statusCode, 401, 'the admin session ended')
  const { token: demoted } = (await login('temp', 'temp password')).json()
  t.equal((await app.inject({ method: 'GET', url: '/api/audit', headers: { authorization: `Bearer ${demoted}` } })).statusCode, 403)
  await app.users.remove('temp')
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${demoted}` } })).statusCode, 401)
})

t.test('a password change ends every session of that user at once; a new login works', async t => {
  await app.users.add('rotator', 'operator', 'rotator password')
  const cookieSession = (await login('rotator', 'rotator password')).cookies.find(c => c.name === 'pgkeep_session')!.value
  const { token: bearerSession } = (await login('rotator', 'rotator password')).json()
  await app.users.setPassword('rotator', 'rotated password')
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', cookies: { pgkeep_session: cookieSession } })).statusCode, 401, 'cookie')
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${bearerSession}` } })).statusCode, 401, 'bearer')
  const { token: fresh } = (await login('rotator', 'rotated password')).json()
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${fresh}` } })).statusCode, 200)
})

t.test('a role change ends the sessions issued under the old role', async t => {
  await app.users.add('promoted', 'viewer', 'promoted password')
  const { token: session } = (await login('promoted', 'promoted password')).json()
  await app.users.setRole('promoted', 'admin')
  t.equal((await app.inject({ method: 'GET', url: '/api/audit', headers: { authorization: `Bearer ${session}` } })).statusCode, 401)
})

t.test('removing a user and adding the name again never revives the old sessions, whatever the role', async t => {
  await app.users.add('recycled', 'viewer', 'recycled password')
  const { token: session } = (await login('recycled', 'recycled password')).json()
  await app.users.remove('recycled')
  await app.users.add('recycled', 'admin', 'recycled password')
  const res = await app.inject({ method: 'GET', url: '/api/audit', headers: { authorization: `Bearer ${session}` } })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'UNAUTHORIZED')
})

t.test('verifyRequest, the one credentials check, refuses a session as soon as its password changed', async t => {
  // what an open WebSocket is re-checked with: it must see the change without a new login
  await app.users.add('watcher', 'viewer', 'watcher password')
  const { token: session } = (await login('watcher', 'watcher password')).json()
  const request = { headers: { authorization: `Bearer ${session}` }, cookies: {} } as unknown as Parameters<typeof app.verifyRequest>[0]
  t.equal((await app.verifyRequest(request)).username, 'watcher')
  await app.users.setPassword('watcher', 'changed password')
  await t.rejects(app.verifyRequest(request), { code: 'UNAUTHORIZED' })
})

t.test('login bodies with unknown fields, wrong types or no body are 400 INVALID_INPUT naming the field', async t => {
  const extra = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password: 'x', admin: true } })
  t.equal(extra.statusCode, 400)
  t.equal(extra.json().code, 'INVALID_INPUT')
  t.match(extra.json().message, /admin/)
  const wrongType = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'root', password: 42 } })
  t.equal(wrongType.statusCode, 400)
  t.match(wrongType.json().message, /password/)
  const empty = await app.inject({ method: 'POST', url: '/api/auth/login' })
  t.equal(empty.statusCode, 400)
})

t.test('audit log: admin pages newest first; operators and viewers are refused', async t => {
  const page = await as('admin', { method: 'GET', url: '/api/audit?page=1&pageSize=3' })
  t.equal(page.statusCode, 200)
  t.equal(page.json().items.length, 3)
  t.equal(page.json().pageSize, 3)
  const times = page.json().items.map((i: { time: string }) => i.time)
  t.same([...times].sort().reverse(), times)
  t.equal((await as('operator', { method: 'GET', url: '/api/audit' })).statusCode, 403)
  t.equal((await as('viewer', { method: 'GET', url: '/api/audit' })).json().code, 'FORBIDDEN')
  t.equal((await as(undefined, { method: 'GET', url: '/api/audit' })).statusCode, 401)
  t.equal((await as('admin', { method: 'GET', url: '/api/audit?pageSize=100000' })).statusCode, 400)
})

t.test('neither the target password, the JWT secret nor a user password ever reaches a response or the log', async t => {
  const bodies: string[] = []
  for (const url of ['/api/health/ready', '/api/auth/me', '/api/audit', '/metrics', '/openapi.json', '/api/backup/list']) {
    bodies.push((await as('admin', { method: 'GET', url })).body)
  }
  bodies.push((await login('root', ADMIN_PASSWORD)).body)
  await app.inject({ method: 'GET', url: '/api/backup/ws', headers: { authorization: `Bearer ${token.viewer}` } })
  const everything = bodies.join('\n') + logs.join('\n')
  t.ok(logs.length > 5, 'the log was captured')
  for (const secret of [TEST_PASSWORD, encodeURIComponent(TEST_PASSWORD), SECRET, ADMIN_PASSWORD, token.viewer]) {
    t.notOk(everything.includes(secret), `"${secret.slice(0, 6)}…" not leaked`)
  }
})
