import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { loadConfig } from '../../server/config.ts'
import { appConfig, newApp, TEST_JWT_SECRET } from '../helpers/app.ts'
import { listeningUrl, memoryIO, spawnCli } from './cli-runner.ts'


function env (dir: string): Record<string, string> {
  return { PGKEEP_BACKUP_DIR: dir, PGKEEP_JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }
}

async function run (args: string[], dir: string, stdin?: string, extraEnv: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  const io = memoryIO({ ...env(dir), ...extraEnv })
  if (stdin !== undefined) {
    const input = new PassThrough()
    input.end(stdin)
    io.stdin = input
  }
  const code = await dispatch(args, io)
  return { code, out: io.out(), err: io.err() }
}

t.test('user add reads the password from stdin, never argv, and the user can log in over the API', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-'))
  const added = await run(['user', 'add', 'alice', '--role', 'operator', '--password-stdin'], dir, 'alice secret pw\n')
  t.equal(added.code, 0, added.err)
  t.match(added.out, 'alice')
  t.equal((await run(['user', 'add', 'bob', '--role', 'viewer', '--password', 'x'], dir)).code, 2, '--password is not a flag')
  t.equal((await run(['user', 'add', 'bob', '--role', 'root', '--password-stdin'], dir, 'long password')).code, 2)
  const noTty = await run(['user', 'add', 'bob', '--role', 'viewer'], dir, '')
  t.equal(noTty.code, 2)
  t.match(noTty.err, /password-stdin/)
  const list = await run(['user', 'list', '--json'], dir)
  t.same(JSON.parse(list.out), [{ username: 'alice', role: 'operator' }])

  const app = await newApp(appConfig(loadConfig(env(dir))))
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'alice secret pw' } })
  t.equal(login.statusCode, 200)
  const me = async (session: string): Promise<number> =>
    (await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${session}` } })).statusCode
  t.equal(await me(login.json().token), 200)

  t.equal((await run(['user', 'passwd', 'alice', '--password-stdin'], dir, 'a new password\n')).code, 0)
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'alice secret pw' } })).statusCode, 401)
  t.equal(await me(login.json().token), 401, 'the running server ended the session issued before passwd')
  const second = (await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'a new password' } })).json().token
  t.equal(await me(second), 200)
  t.equal((await run(['user', 'remove', 'alice'], dir)).code, 0)
  t.equal((await run(['user', 'remove', 'alice'], dir)).code, 1)
  t.equal((await run(['user', 'add', 'alice', '--role', 'admin', '--password-stdin'], dir, 'a new password\n')).code, 0)
  t.equal(await me(second), 401, 'removing and adding the name again does not revive it')
  t.equal((await run(['user', 'remove', 'alice'], dir)).code, 0)
  const audit = readFileSync(join(dir, '.pgkeep', 'audit.jsonl'), 'utf8')
  t.match(audit, /"action":"user.add","subject":"alice"/)
  t.match(audit, /"action":"user.remove","subject":"alice"/)
  t.notMatch(audit, 'alice secret pw')
})

t.test('token create prints the token once; it works as a Bearer until token revoke', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-'))
  const created = await run(['token', 'create', '--name', 'ci', '--role', 'operator', '--expires', '30d'], dir)
  t.equal(created.code, 0, created.err)
  const token = created.out.trim()
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  t.match(created.err, /shown once/)
  t.notMatch(readFileSync(join(dir, '.pgkeep', 'tokens.json'), 'utf8'), token)
  const app = await newApp(appConfig(loadConfig(env(dir))))
  t.teardown(() => app.close())
  const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.same(me.json(), { username: 'token:ci', role: 'operator' })
  const list = JSON.parse((await run(['token', 'list', '--json'], dir)).out)
  t.equal(list.length, 1)
  t.match(list[0], { name: 'ci', role: 'operator', expiresAt: String })
  t.equal((await run(['token', 'revoke', list[0].id], dir)).code, 0)
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401)
  t.equal((await run(['token', 'create', '--name', 'x', '--role', 'viewer', '--expires', 'soon'], dir)).code, 2)
  t.equal((await run(['token', 'create', '--role', 'viewer'], dir)).code, 2)
})

t.test('serve with no users prints the first-admin hint, listens, and exits 0 on SIGTERM', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-serve-'))
  const server = spawnCli(['serve', '--port', '0'], env(dir))
  const { child, result, stderrText } = server
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = await listeningUrl(server)
  const health = await fetch(`${url}/api/health`)
  t.equal(health.status, 200)
  t.equal((await fetch(`${url}/api/backup/list`)).status, 401, 'never runs open')
  child.kill('SIGTERM')
  const { code, stdout } = await result
  t.equal(code, 0)
  t.match(stdout, /pgkeep user add admin --role admin/)
  t.notMatch(stdout + stderrText(), TEST_JWT_SECRET)
})

t.test('serve --trust-proxy trusts one hop: the audit log has the address the proxy appended, not the one the client wrote', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-serve-'))
  const server = spawnCli(['serve', '--port', '0', '--trust-proxy'], env(dir))
  const { child, result } = server
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = await listeningUrl(server)
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.66, 203.0.113.9' },
    body: JSON.stringify({ username: 'nobody', password: 'a wrong guess' }),
  })
  t.equal(res.status, 401)
  child.kill('SIGTERM')
  t.equal((await result).code, 0)
  const line = JSON.parse(readFileSync(join(dir, '.pgkeep', 'audit.jsonl'), 'utf8').trim().split('\n').at(-1)!)
  t.match(line, { action: 'login', user: 'nobody', ip: '203.0.113.9' })
})

t.test('a bad PGKEEP_TRUST_PROXY stops serve with exit 2 and one line naming it', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-serve-'))
  const r = await run(['serve', '--port', '0'], dir, undefined, { PGKEEP_TRUST_PROXY: 'everyone' })
  t.equal(r.code, 2)
  t.match(r.err, /^[^\n]*PGKEEP_TRUST_PROXY: "everyone"[^\n]*\n?$/)
})
