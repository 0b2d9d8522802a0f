import t from 'tap'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { auditLines, setupApp } from '../helper.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase('admin_app')
const { app, as } = await setupApp(t, cluster, 'admin_app')

const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } })

t.test('an admin adds a user, changes the role, resets the password and removes them; each change is audited without the password', async t => {
  const add = await as('admin', { method: 'POST', url: '/api/users', payload: { username: 'olga', role: 'viewer', password: 'olga-first-pw' } })
  t.equal(add.statusCode, 201)
  t.same(add.json(), { username: 'olga', role: 'viewer' })
  t.match((await as('admin', { method: 'GET', url: '/api/users' })).json().items, [{ username: 'root', role: 'admin' }, { username: 'olga', role: 'viewer' }])
  const session = (await login('olga', 'olga-first-pw')).json().token as string

  const role = await as('admin', { method: 'PUT', url: '/api/users/olga/role', payload: { role: 'operator' } })
  t.same(role.json(), { username: 'olga', role: 'operator' })
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${session}` } })).statusCode, 401, 'a role change ends her sessions')

  const pw = await as('admin', { method: 'PUT', url: '/api/users/olga/password', payload: { password: 'olga-second-pw' } })
  t.equal(pw.statusCode, 200)
  t.equal((await login('olga', 'olga-first-pw')).statusCode, 401)
  t.equal((await login('olga', 'olga-second-pw')).statusCode, 200)

  t.same((await as('admin', { method: 'DELETE', url: '/api/users/olga' })).json(), { deleted: 'olga' })
  t.equal((await login('olga', 'olga-second-pw')).statusCode, 401)

  const lines = (await auditLines(app)).filter(l => l.subject === 'olga' && String(l.action).startsWith('user.'))
  t.same(lines.map(l => [l.action, l.outcome]), [['user.add', 'ok'], ['user.role', 'ok'], ['user.passwd', 'ok'], ['user.remove', 'ok']])
  const all = JSON.stringify(await auditLines(app))
  t.notMatch(all, /olga-first-pw|olga-second-pw/, 'no password in the audit log')
})

t.test('bad input and unknown users are clear 4xx errors', async t => {
  const short = await as('admin', { method: 'POST', url: '/api/users', payload: { username: 'pat', role: 'viewer', password: 'short' } })
  t.equal(short.statusCode, 400)
  t.match(short.json(), { code: 'INVALID_INPUT', message: /password/ })
  const role = await as('admin', { method: 'POST', url: '/api/users', payload: { username: 'pat', role: 'boss', password: 'long enough' } })
  t.equal(role.statusCode, 400)
  t.equal((await as('admin', { method: 'PUT', url: '/api/users/nobody/role', payload: { role: 'viewer' } })).statusCode, 404)
  t.equal((await as('admin', { method: 'POST', url: '/api/users', payload: { username: 'root', role: 'viewer', password: 'long enough' } })).statusCode, 409)
})

t.test('the last admin can be neither removed nor demoted', async t => {
  const rm = await as('admin', { method: 'DELETE', url: '/api/users/root' })
  t.equal(rm.statusCode, 409)
  t.match(rm.json().message, /no admin would be left/)
  t.equal((await as('admin', { method: 'PUT', url: '/api/users/root/role', payload: { role: 'operator' } })).statusCode, 409)
  t.equal((await app.users.get('root'))?.role, 'admin')
})

t.test('users and tokens are admin-only: an operator is refused and the refusal audited', async t => {
  for (const [method, url] of [['GET', '/api/users'], ['GET', '/api/tokens'], ['DELETE', '/api/users/root']] as const) {
    t.equal((await as('operator', { method, url })).statusCode, 403, `${method} ${url}`)
    t.equal((await as(undefined, { method, url })).statusCode, 401, `${method} ${url} without login`)
  }
  t.equal((await as('operator', { method: 'POST', url: '/api/tokens', payload: { name: 'sneaky', role: 'admin' } })).statusCode, 403)
  t.match((await auditLines(app)).find(l => l.action === 'user.remove' && l.outcome === 'denied'), { subject: 'root' })
})

t.test('an admin creates an API token (shown once), lists it without the token, uses it, and revokes it', async t => {
  const res = await as('admin', { method: 'POST', url: '/api/tokens', payload: { name: 'nightly-script', role: 'operator', expires: '30d' } })
  t.equal(res.statusCode, 201)
  const { token, info } = res.json() as { token: string, info: { id: string, name: string, role: string, expiresAt?: string, createdBy: string } }
  t.match(info, { name: 'nightly-script', role: 'operator', createdBy: 'token:suite-admin' })
  t.ok(info.expiresAt)
  const list = await as('admin', { method: 'GET', url: '/api/tokens' })
  t.ok(list.json().items.some((i: { id: string }) => i.id === info.id))
  t.notMatch(list.body, token, 'the list never holds the token')
  const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.same(me.json(), { username: 'token:nightly-script', role: 'operator' })

  const revoke = await as('admin', { method: 'DELETE', url: `/api/tokens/${info.id}` })
  t.equal(revoke.statusCode, 200)
  t.ok(revoke.json().revokedAt)
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401)
  const lines = (await auditLines(app)).filter(l => l.subject === 'nightly-script')
  t.same(lines.map(l => l.action), ['token.create', 'token.revoke'])
  t.notMatch(JSON.stringify(await auditLines(app)), token, 'the token never reaches the audit log')
  t.equal((await as('admin', { method: 'POST', url: '/api/tokens', payload: { name: 'x', role: 'viewer', expires: 'soon' } })).statusCode, 400)
  t.equal((await as('admin', { method: 'DELETE', url: '/api/tokens/00000000-0000-4000-8000-000000000000' })).statusCode, 404)
})
