import t from 'tap'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { parseDuration, signJwt, TokenStore, verifyJwt, type TokenClaims } from '../../server/auth/token-store.ts'
import { UsersStore } from '../../server/auth/users-store.ts'

const SECRET = 'a-test-secret-that-is-long-enough-0123456789'
const freshDir = (): string => mkdtempSync(join(tmpdir(), 'pgkeep-tokens-'))

t.test('an API token carries its role until it is revoked', async t => {
  const dir = freshDir()
  const tokens = new TokenStore(dir)
  const users = new UsersStore(dir)
  const { token, info } = await tokens.create(SECRET, { name: 'ci', role: 'operator', createdBy: 'admin' })
  const claims = verifyJwt(SECRET, token)
  t.equal(claims.jti, info.id)
  t.same(await tokens.principalFor(claims, users), { username: 'token:ci', role: 'operator', kind: 'api', jti: info.id, exp: undefined })
  await tokens.revoke(info.id)
  t.equal(await tokens.principalFor(claims, users), undefined)
  t.ok((await tokens.get(info.id))?.revokedAt)
})

t.test('the tokens file is 0600 and never stores the token itself', async t => {
  const tokens = new TokenStore(freshDir())
  const { token } = await tokens.create(SECRET, { name: 'backup-script', role: 'viewer', createdBy: 'admin', expiresInSeconds: 3600 })
  t.equal(statSync(tokens.path).mode & 0o777, 0o600)
  const raw = readFileSync(tokens.path, 'utf8')
  t.notMatch(raw, token.split('.')[2])
  t.match((await tokens.list())[0], { name: 'backup-script', role: 'viewer', expiresAt: String })
})

t.test('a token signed with another secret or past its expiry does not verify', async t => {
  const forged = signJwt('another-secret-another-secret-another', { sub: 'x', jti: 'y', kind: 'api', role: 'admin' })
  t.throws(() => verifyJwt(SECRET, forged))
  const expired = signJwt(SECRET, { sub: 'x', jti: 'y', kind: 'api', role: 'admin', exp: Math.floor(Date.now() / 1000) - 10 })
  t.throws(() => verifyJwt(SECRET, expired))
})

t.test('an unknown token id (deleted store entry) grants nothing', async t => {
  const dir = freshDir()
  const claims = verifyJwt(SECRET, signJwt(SECRET, { sub: 'token:ghost', jti: 'not-in-store', kind: 'api', role: 'admin' }))
  t.equal(await new TokenStore(dir).principalFor(claims, new UsersStore(dir)), undefined)
})

t.test('a session follows its user: gone when the user logs out or is removed', async t => {
  const dir = freshDir()
  const tokens = new TokenStore(dir)
  const users = new UsersStore(dir)
  await users.add('erin', 'admin', 'erin password')
  const gen = (await users.sessionUser('erin'))!.sessionStamp
  const claims = { sub: 'erin', jti: 's1', kind: 'session' as const, gen, exp: Math.floor(Date.now() / 1000) + 60 }
  t.equal((await tokens.principalFor(claims, users))?.role, 'admin')
  await tokens.revokeSession('s1', claims.exp)
  t.equal(await tokens.principalFor(claims, users), undefined)
  const other = { ...claims, jti: 's2' }
  await users.remove('erin')
  t.equal(await tokens.principalFor(other, users), undefined)
})

t.test('a session is bound to its user\'s stamp: passwd, role change and remove + add each end it', async t => {
  const dir = freshDir()
  const tokens = new TokenStore(dir)
  const users = new UsersStore(dir)
  await users.add('finn', 'viewer', 'finn password')
  const session = async (): Promise<TokenClaims> => ({ sub: 'finn', jti: randomUUID(), kind: 'session', gen: (await users.sessionUser('finn'))!.sessionStamp })
  const stillValid = async (claims: TokenClaims): Promise<boolean> => (await tokens.principalFor(claims, users)) !== undefined

  const beforePasswd = await session()
  t.equal(await stillValid(beforePasswd), true)
  await users.setPassword('finn', 'finn password 2')
  t.equal(await stillValid(beforePasswd), false, 'password change')

  const beforeRole = await session()
  await users.setRole('finn', 'operator')
  t.equal(await stillValid(beforeRole), false, 'role change')

  const beforeRemove = await session()
  await users.remove('finn')
  await users.add('finn', 'operator', 'finn password 2')
  t.equal(await stillValid(beforeRemove), false, 'removed and added again with the same role and password')
  t.equal(await stillValid(await session()), true, 'a session of the new user works')
  t.equal(await stillValid({ sub: 'finn', jti: randomUUID(), kind: 'session' }), false, 'a session without a stamp')
})

t.test('duplicate live names and bad names are refused', async t => {
  const tokens = new TokenStore(freshDir())
  await tokens.create(SECRET, { name: 'ci', role: 'viewer', createdBy: 'a' })
  await t.rejects(tokens.create(SECRET, { name: 'ci', role: 'viewer', createdBy: 'a' }), { code: 'CONFLICT' })
  await t.rejects(tokens.create(SECRET, { name: '../x', role: 'viewer', createdBy: 'a' }), { code: 'INVALID_INPUT' })
  await tokens.revoke('ci')
  await tokens.create(SECRET, { name: 'ci', role: 'viewer', createdBy: 'a' })
  t.equal((await tokens.list()).length, 2)
})

t.test('durations read as 30d, 12h, 90m or seconds', async t => {
  t.equal(parseDuration('30d'), 30 * 86400)
  t.equal(parseDuration('12h'), 12 * 3600)
  t.equal(parseDuration('90m'), 5400)
  t.equal(parseDuration('45'), 45)
  t.throws(() => parseDuration('soon'), { code: 'INVALID_INPUT' })
  t.throws(() => parseDuration('0d'), { code: 'INVALID_INPUT' })
})
