import { execFileSync } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import pg from 'pg'
import t from 'tap'
import type { Target } from '../../../server/config.ts'
import { connectionError, connectTarget, versionFromNum } from '../../../server/engine/pg/connection.ts'

const target: Target = { name: 'silent', host: '127.0.0.1', port: 1, user: 'u', password: 'Sekr1t-pw-91', database: 'd' }

t.test('a server that accepts but never answers fails after the 5 s connect timeout, retryable', async t => {
  const sockets: Socket[] = []
  const srv = createServer(s => { sockets.push(s) }).listen(0, '127.0.0.1')
  await new Promise(resolve => srv.once('listening', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); srv.close() })
  const port = (srv.address() as { port: number }).port
  await t.rejects(connectTarget({ ...target, port }), { code: 'PG_CONNECTION_FAILED', details: { retryable: true }, message: /did not answer in time/ })
})

t.test('a unix socket directory without a server is PG_CONNECTION_FAILED, retryable', async t => {
  await t.rejects(connectTarget({ ...target, host: '/nonexistent-pgkeep-dir' }),
    { code: 'PG_CONNECTION_FAILED', details: { retryable: true }, message: /\/nonexistent-pgkeep-dir\/\.s\.PGSQL\.1/ })
})

function serverError (code: string, message: string): pg.DatabaseError {
  const err = new pg.DatabaseError(message, message.length, 'error')
  err.code = code
  return err
}

t.test('server error codes map to what an admin can act on', async t => {
  t.match(connectionError(serverError('57P03', 'the database system is starting up'), target), { code: 'PG_CONNECTION_FAILED', details: { retryable: true } })
  t.match(connectionError(serverError('53300', 'sorry, too many clients already'), target), { code: 'PG_CONNECTION_FAILED', details: { retryable: true } })
  t.match(connectionError(serverError('28000', 'no pg_hba.conf entry for host "10.0.0.1"'), target), { code: 'PG_AUTH_FAILED', message: /pg_hba/ })
  t.match(connectionError(serverError('3D000', 'database "d" does not exist'), target), { code: 'PG_CONNECTION_FAILED', details: { retryable: false } })
})

t.test('a password echoed in a driver message is scrubbed', async t => {
  const e = connectionError(new Error(`weird failure near ${target.password}`), target)
  t.notOk(e.message.includes(target.password!))
})

t.test('server_version_num reads as the version pg_dump prints', async t => {
  t.same(versionFromNum(150018), { version: '15.18', major: 15 })
  t.same(versionFromNum(170000), { version: '17.0', major: 17 })
  t.same(versionFromNum(90624), { version: '9.6.24', major: 9 })
})

t.test('loading the driver does not load node\'s fetch implementation, and leaves no navigator behind', async t => {
  // in a process of its own: the test runner may have loaded undici for reasons of its own
  const script = `
    const before = typeof globalThis.navigator
    const { loadDriver } = await import(${JSON.stringify(new URL('../../../server/engine/pg/connection.ts', import.meta.url).href)})
    const pg = await loadDriver()
    console.log(JSON.stringify({ client: typeof pg.Client, undici: process.moduleLoadList.some(m => m.includes('undici')), before, after: typeof globalThis.navigator }))`
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
  const r = JSON.parse(out) as { client: string, undici: boolean, before: string, after: string }
  t.equal(r.client, 'function')
  t.equal(r.undici, false, 'pg\'s Cloudflare sniff did not construct a fetch Response')
  t.equal(r.after, r.before, 'navigator is as it was (absent on Node 20)')
})
