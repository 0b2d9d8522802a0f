import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { dispatch } from '../../server/cli/main.ts'
import { loadConfig } from '../../server/config.ts'
import { appConfig, newApp, TEST_JWT_SECRET } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { waitUntil } from '../helpers/service.ts'
import { memoryIO } from '../cli/cli-runner.ts'
import { emptyCatalog } from './catalog-helpers.ts'

// With PGKEEP_CATALOG_URL, the CLI's user and token commands and the server keep users, tokens, the audit log
// and schedules in the catalog, not in the backups dir, and each process closes its catalog connection.

const cluster = await testCluster()
t.teardown(cluster.stop)
const DATABASE = 'catalog_wiring'
await emptyCatalog(cluster, DATABASE)
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-catalog-wiring-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const env = { PGKEEP_BACKUP_DIR: dir, PGKEEP_JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', PGKEEP_CATALOG_URL: cluster.url(DATABASE) }

async function cli (args: string[], stdin?: string): Promise<{ code: number, out: string, err: string }> {
  const io = memoryIO(env)
  if (stdin !== undefined) {
    const input = new PassThrough()
    input.end(stdin)
    io.stdin = input
  }
  const code = await dispatch(args, io)
  return { code, out: io.out(), err: io.err() }
}

const sql = async (q: string): Promise<string> => (await cluster.psql(q, DATABASE)).trim()
const catalogConnections = async (): Promise<number> =>
  Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${DATABASE}' AND application_name = 'pgkeep-catalog'`, 'postgres'))

t.test('pgkeep user and token write to the catalog, audited there, and leave the backups dir alone', async t => {
  const added = await cli(['user', 'add', 'alice', '--role', 'admin', '--password-stdin'], 'alice secret pw\n')
  t.equal(added.code, 0, added.err)
  const created = await cli(['token', 'create', '--name', 'ci', '--role', 'viewer', '--json'])
  t.equal(created.code, 0, created.err)
  t.equal(await sql('SELECT username || \':\' || role FROM pgkeep.users'), 'alice:admin')
  t.equal(await sql('SELECT name FROM pgkeep.tokens'), 'ci')
  t.equal(await sql("SELECT string_agg(entry->>'action', ',' ORDER BY seq) FROM pgkeep.audit"), 'user.add,token.create')
  t.notOk(existsSync(join(dir, '.pgkeep', 'users.json')))
  t.notOk(existsSync(join(dir, '.pgkeep', 'tokens.json')))
  t.notOk(existsSync(join(dir, '.pgkeep', 'audit.jsonl')))
  t.same(JSON.parse((await cli(['user', 'list', '--json'])).out), [{ username: 'alice', role: 'admin' }])
  await waitUntil(async () => await catalogConnections() === 0, 15_000, 'the commands to close their catalog connections')
})

t.test('a server on the catalog logs in the CLI\'s user, refuses a token the CLI revoked, and closes its connection', async t => {
  const app = await newApp(appConfig(loadConfig(env)))
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  t.equal(await app.users.isEmpty(), false, 'the first-admin hint reads the catalog')
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'alice secret pw' } })
  t.equal(login.statusCode, 200)
  const created = await app.inject({ method: 'POST', url: '/api/tokens', payload: { name: 'deploy', role: 'operator' }, headers: { authorization: `Bearer ${login.json().token}` } })
  t.equal(created.statusCode, 201)
  const script = { authorization: `Bearer ${created.json().token}` }
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: script })).statusCode, 200)
  t.equal((await cli(['token', 'revoke', 'deploy'])).code, 0)
  t.equal((await app.inject({ method: 'GET', url: '/api/auth/me', headers: script })).statusCode, 401, 'revoked by another process: refused at once')
  const schedule = await app.inject({ method: 'POST', url: '/api/schedules', payload: { name: 'nightly', cron: '0 3 * * *' }, headers: { authorization: `Bearer ${login.json().token}` } })
  t.equal(schedule.statusCode, 201, schedule.body)
  t.equal(await sql('SELECT name FROM pgkeep.schedules'), 'nightly')
  t.match(await sql("SELECT string_agg(entry->>'action', ',' ORDER BY seq) FROM pgkeep.audit"), /^user\.add,token\.create,login,token\.create,token\.revoke,schedule\.create/)
  t.notOk(existsSync(join(dir, '.pgkeep', 'schedules.json')))
  await app.close()
  closed = true
  await waitUntil(async () => await catalogConnections() === 0, 15_000, 'the server to close its catalog connection')
})
