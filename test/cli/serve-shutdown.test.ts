import { request as httpRequest, type IncomingMessage } from 'node:http'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import WebSocket from 'ws'
import type { Backup } from '../../schemas/backup.ts'
import { TokenStore } from '../../server/auth/token-store.ts'
import { TEST_JWT_SECRET } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { waitUntil } from '../helpers/service.ts'
import { listeningUrl, runCli, spawnCli } from './cli-runner.ts'

// ~40 MB of table data: a download of it cannot fit in the loopback socket buffers, so a client that stops
// reading leaves the server mid-write
const cluster = await testCluster()
t.teardown(cluster.stop)
const DB = 'serve_shutdown'
await createSampleDatabase(cluster, DB, { rows: 100_000, padding: 300 })

const GRACE_SECONDS = 10

t.test('SIGTERM with a stalled download, a stalled viewer and a dump waiting on a lock: the dump ends cancelled and `pgkeep serve` exits within the grace period', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-serve-shutdown-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = {
    DATABASE_URL: cluster.url(DB),
    PGKEEP_BACKUP_DIR: dir,
    PGKEEP_PG_BIN_DIR: cluster.binDir,
    PGKEEP_JWT_SECRET: TEST_JWT_SECRET,
    PGKEEP_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
  }
  const made = await runCli(['create', '--format', 'plain', '--compression', 'none', '--json'], env)
  t.equal(made.code, 0, 'the backup to download is made', { stderr: made.stderr })
  const done = JSON.parse(made.stdout) as Backup
  const { token } = await new TokenStore(dir).create(TEST_JWT_SECRET, { name: 'ops', role: 'operator', createdBy: 'test' })

  const server = spawnCli(['serve', '--port', '0'], env)
  t.teardown(() => { server.child.kill('SIGKILL') })
  let log = ''
  server.child.stdout?.on('data', (d: Buffer) => { log += d.toString() })
  const url = await listeningUrl(server)
  const auth = { authorization: `Bearer ${token}` }

  // the dump is slow by construction: pg_dump waits for a lock this test holds until the end (schema only, so
  // the size estimate before it, which would wait on the same lock, reads no table sizes)
  const locker = new pg.Client({ connectionString: cluster.url(DB) })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE')

  // a download whose client reads the headers and then nothing more
  const download = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${url}/api/backup/download/${done.id}`, { headers: auth }, resolve)
    req.once('error', reject)
    req.end()
  })
  t.equal(download.statusCode, 200)
  const size = Number(download.headers['content-length'])
  download.pause()
  let received = 0
  download.on('data', (d: Buffer) => { received += d.length })
  const downloadEnded = new Promise<void>(resolve => download.socket.once('close', () => resolve()))

  // a viewer that stops reading at the TCP level
  const viewer = new WebSocket(`${url.replace('http', 'ws')}/api/backup/ws`, { headers: auth })
  await new Promise(resolve => viewer.once('message', resolve))
  const viewerClosed = new Promise<void>(resolve => viewer.once('close', () => resolve()))
  const viewerSocket = (viewer as unknown as { _socket: import('node:net').Socket })._socket
  viewerSocket.pause()

  const created = await fetch(`${url}/api/backup/create`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ format: 'plain', compression: 'none', schemaOnly: true }),
  })
  t.equal(created.status, 202)
  const { backup } = await created.json() as { backup: Backup }
  await waitUntil(async () => (await cluster.psql(
    `SELECT count(*) FROM pg_stat_activity WHERE datname = '${DB}' AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'`)).trim() !== '0',
  30_000, 'pg_dump to wait on the lock')

  const exited = new Promise<{ code: number | null, seconds: number }>(resolve => {
    const start = Date.now()
    server.child.once('exit', code => resolve({ code, seconds: (Date.now() - start) / 1000 }))
  })
  server.child.kill('SIGTERM')
  // a deadline, not a race: nothing the server waits on here ever finishes by itself
  const deadline = new Promise<'stuck'>(resolve => setTimeout(() => resolve('stuck'), (GRACE_SECONDS + 20) * 1000).unref())
  const outcome = await Promise.race([exited, deadline])
  if (outcome === 'stuck') {
    t.fail(`still running ${GRACE_SECONDS + 20} s after SIGTERM`)
    return
  }
  t.equal(outcome.code, 0, 'exited cleanly, not by the forced-exit backstop', { log })
  t.ok(outcome.seconds <= GRACE_SECONDS, `exited ${outcome.seconds.toFixed(1)} s after SIGTERM, within the ${GRACE_SECONDS} s grace period`)
  // read what the kernel still holds for the two stalled clients, up to where the server cut them
  download.resume()
  viewerSocket.resume()
  await downloadEnded
  await viewerClosed
  t.ok(received < size, `the stalled download was cut (${received} of ${size} bytes)`)

  // the lock is still held: the dump cannot have finished on its own
  const list = await runCli(['list', '--json'], env)
  const final = (JSON.parse(list.stdout) as { items: Backup[] }).items.find(b => b.id === backup.id)
  t.equal(final?.status, 'cancelled')
  t.equal(final?.error?.code, 'CANCELLED')
  t.same(readdirSync(dir).filter(f => f.endsWith('.partial')), [], 'no .partial left')
  await locker.query('ROLLBACK')
})
