import t from 'tap'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UsersStore } from '../../server/auth/users-store.ts'
import { resolveJwtSecret } from '../../server/auth/jwt-secret.ts'

const freshDir = (): string => mkdtempSync(join(tmpdir(), 'pgkeep-users-'))

t.test('a user added with a password can log in with it and not with another', async t => {
  const dir = freshDir()
  t.teardown(() => {})
  const store = new UsersStore(dir)
  t.equal(await store.isEmpty(), true)
  await store.add('alice', 'operator', 'correct horse battery')
  t.match(await store.verifyPassword('alice', 'correct horse battery'), { username: 'alice', role: 'operator', sessionStamp: String })
  t.equal(await store.verifyPassword('alice', 'wrong password!'), undefined)
  t.equal(await store.verifyPassword('nobody', 'correct horse battery'), undefined)
  t.same(await store.list(), [{ username: 'alice', role: 'operator' }])
})

t.test('the users file is 0600 and holds only salted scrypt hashes, never the password', async t => {
  const dir = freshDir()
  const store = new UsersStore(dir)
  await store.add('alice', 'admin', 'same-password-1')
  await store.add('bob', 'viewer', 'same-password-1')
  const raw = readFileSync(store.path, 'utf8')
  t.equal(statSync(store.path).mode & 0o777, 0o600)
  t.equal(statSync(join(dir, '.pgkeep')).mode & 0o777, 0o700)
  t.notMatch(raw, 'same-password-1')
  const hashes = JSON.parse(raw).users.map((u: { passwordHash: string }) => u.passwordHash)
  t.match(hashes[0], /^scrypt\$/)
  t.not(hashes[0], hashes[1], 'per-user salt: equal passwords give different hashes')
})

t.test('bad usernames, roles, short passwords and duplicates are refused with a coded error', async t => {
  const store = new UsersStore(freshDir())
  await t.rejects(store.add('../etc/passwd', 'admin', 'long enough pw'), { code: 'INVALID_INPUT' })
  await t.rejects(store.add('carol', 'root' as 'admin', 'long enough pw'), { code: 'INVALID_INPUT' })
  await t.rejects(store.add('carol', 'admin', 'short'), { code: 'INVALID_INPUT' })
  await store.add('carol', 'admin', 'long enough pw')
  await t.rejects(store.add('carol', 'viewer', 'long enough pw'), { code: 'CONFLICT' })
  t.equal((await store.list()).length, 1)
})

t.test('passwd changes the password, remove deletes the user', async t => {
  const store = new UsersStore(freshDir())
  await store.add('dave', 'viewer', 'first password')
  await store.setPassword('dave', 'second password')
  t.equal(await store.verifyPassword('dave', 'first password'), undefined)
  t.ok(await store.verifyPassword('dave', 'second password'))
  await store.remove('dave')
  t.equal(await store.isEmpty(), true)
  await t.rejects(store.remove('dave'), { code: 'NOT_FOUND' })
  await t.rejects(store.setPassword('dave', 'third password'), { code: 'NOT_FOUND' })
})

t.test('concurrent adds in one process all land in the file', async t => {
  const store = new UsersStore(freshDir())
  await Promise.all(['u1', 'u2', 'u3', 'u4'].map(u => store.add(u, 'viewer', 'password ' + u)))
  t.same((await store.list()).map(u => u.username).sort(), ['u1', 'u2', 'u3', 'u4'])
})

t.test('without PGKEEP_JWT_SECRET a secret is generated once, 0600, and reused', async t => {
  const dir = freshDir()
  const a = await resolveJwtSecret({ backupDir: dir })
  const b = await resolveJwtSecret({ backupDir: dir })
  t.equal(a, b)
  t.ok(a.length >= 32)
  t.equal(statSync(join(dir, '.pgkeep', 'jwt-secret')).mode & 0o777, 0o600)
  t.equal(await resolveJwtSecret({ backupDir: dir, jwtSecret: 'x'.repeat(40) }), 'x'.repeat(40))
})
