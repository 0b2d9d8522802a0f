import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Compile } from 'typebox/compile'
import { Backup, type BackupWithProgress, type ListResult } from '../../schemas/backup.ts'
import { dispatch } from '../../server/cli/main.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint } from '../helpers/sample-db.ts'
import { setupApp } from '../http/helper.ts'
import { memoryIO, runCli, spawnCli } from './cli-runner.ts'
import { waitUntil } from '../helpers/service.ts'
import { holdDumpGate } from '../helpers/dump-gate.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_remote_shop', { rows: 2000 })
const out = mkdtempSync(join(tmpdir(), 'pgkeep-cli-remote-'))
t.teardown(() => rmSync(out, { recursive: true, force: true }))

// one real server over a real socket for the whole file: the CLI talks HTTP and WebSocket to it
// a second target big enough (~40 MB at zstd -19) that a dump lasts long enough to interrupt
await createSampleDatabase(cluster, 'cli_remote_big', { rows: 200_000, padding: 160 })
const big = { name: 'big', host: '127.0.0.1', port: cluster.port, user: cluster.user, database: 'cli_remote_big', password: cluster.password }
const server = await setupApp(t, cluster, 'cli_remote_shop', {}, {})
server.config.targets.big = big
await server.app.listen({ host: '127.0.0.1', port: 0 })
const address = server.app.server.address()
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
const operator = server.token.operator
const checkBackup = Compile(Backup)

async function cli (args: string[], token = operator): Promise<{ code: number, out: string, err: string }> {
  // an env without DATABASE_URL: remote mode must not need local configuration
  const io = memoryIO({ PGKEEP_TOKEN: token })
  const code = await dispatch([...args, '--server', url], io)
  return { code, out: io.out(), err: io.err() }
}

let created: Backup

t.test('remote create follows the job over the WebSocket and prints the final record with --json', async t => {
  const r = await runCli(['create', '--json', '--server', url, '--token', operator, '--compression', 'gzip'], { PGKEEP_BACKUP_DIR: join(out, 'unused') })
  t.equal(r.code, 0, r.stderr)
  created = JSON.parse(r.stdout) as Backup
  t.ok(checkBackup.Check(created), 'matches the Backup schema')
  t.equal(created.status, 'completed')
  t.ok(existsSync(join(server.config.backupDir, created.name)), 'the server wrote the file')
  t.notOk(existsSync(join(out, 'unused')), 'nothing local was touched')
  t.notOk(r.stderr.includes(operator), 'the token is not printed')
  // the live socket authenticated by header: no URL the server saw carries a token
  const urls = server.logs.map(l => (JSON.parse(l) as { req?: { url?: string } }).req?.url).filter(u => u !== undefined)
  t.ok(urls.includes('/api/backup/ws'), 'the event socket was opened')
  t.notOk(urls.some(u => u.includes('token')), urls.join(' '))
})

t.test('remote list, status and info read the server', async t => {
  const list = await cli(['list', '--json'])
  t.equal(list.code, 0, list.err)
  const result = JSON.parse(list.out) as ListResult
  t.same(result.items.map(b => b.id), [created.id])
  const status = await cli(['status', '--json', created.id])
  t.equal((JSON.parse(status.out) as BackupWithProgress).backup.status, 'completed')
  const info = await cli(['info', created.id])
  t.match(info.out, /^Status: +completed$/m)
})

t.test('remote errors keep their code: unknown id -> NOT_FOUND exit 1, bad token -> UNAUTHORIZED exit 1, viewer cannot create', async t => {
  const missing = await cli(['status', '01936f1e-8a2b-7c3d-8e4f-0123456789ab'])
  t.equal(missing.code, 1)
  t.match(missing.err, /^pgkeep: NOT_FOUND: /)
  const badToken = await cli(['list'], 'not-a-token')
  t.equal(badToken.code, 1)
  t.match(badToken.err, /^pgkeep: UNAUTHORIZED: /)
  const viewer = await cli(['create'], server.token.viewer)
  t.equal(viewer.code, 1)
  t.match(viewer.err, /^pgkeep: FORBIDDEN: /)
  const cancelDone = await cli(['cancel', created.id])
  t.equal(cancelDone.code, 1)
  t.match(cancelDone.err, /^pgkeep: INVALID_STATE: /)
})

t.test('download writes the file whole and verified, and resumes from an existing .partial', async t => {
  const stored = readFileSync(join(server.config.backupDir, created.name))
  const file = join(out, 'copy.dump')
  const full = await cli(['download', created.id, '-o', file])
  t.equal(full.code, 0, full.err)
  t.match(full.out, /sha256 ok/)
  t.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), created.sha256)
  t.notOk(existsSync(`${file}.partial`))

  const resumed = join(out, 'resumed.dump')
  writeFileSync(`${resumed}.partial`, stored.subarray(0, Math.floor(stored.length / 3)))
  const r = await cli(['download', '--json', created.id, '-o', resumed])
  t.equal(r.code, 0, r.err)
  const result = JSON.parse(r.out) as { resumedFrom: number, verified: boolean }
  t.equal(result.resumedFrom, Math.floor(stored.length / 3), 'only the rest was fetched')
  t.ok(result.verified)
  t.same(readFileSync(resumed), stored)
})

t.test('a .partial holding wrong bytes fails the checksum: exit 3, nothing renamed into place', async t => {
  const stored = readFileSync(join(server.config.backupDir, created.name))
  const file = join(out, 'bad.dump')
  writeFileSync(`${file}.partial`, Buffer.alloc(Math.floor(stored.length / 2), 0x41))
  const r = await cli(['download', created.id, '-o', file])
  t.equal(r.code, 3)
  t.match(r.err, /^pgkeep: INTEGRITY_FAILED: /)
  t.notOk(existsSync(file))
})

t.test('remote validate and pin go through the API', async t => {
  const v = await cli(['validate', created.id])
  t.equal(v.code, 0, v.err)
  const p = await cli(['pin', '--json', created.id])
  t.equal(p.code, 0, p.err)
  t.equal((JSON.parse(p.out) as Backup).pinned, true)
})

t.test('remote restore runs on the server and is followed to its end; it takes an admin token', async t => {
  const denied = await cli(['restore', created.id, '--database', 'cli_remote_restored', '--create'])
  t.equal(denied.code, 1)
  t.match(denied.err, /^pgkeep: FORBIDDEN: /)
  const r = await cli(['restore', '--json', created.id, '--database', 'cli_remote_restored', '--create'], server.token.admin)
  t.equal(r.code, 0, r.err)
  t.match(JSON.parse(r.out), { ok: true, durationMs: Number, backupId: created.id, database: 'cli_remote_restored' })
  t.equal(await databaseFingerprint(cluster, 'cli_remote_restored'), await databaseFingerprint(cluster, 'cli_remote_shop'))
  const again = await cli(['restore', created.id, '--database', 'cli_remote_restored'], server.token.admin)
  t.equal(again.code, 2, 'restoring into a database that holds objects is refused by the server: a usage error here')
  t.match(again.err, /^pgkeep: TARGET_NOT_EMPTY: database "cli_remote_restored" on target "default" is not empty \(.*\); restore with clean/m)
  const replaced = await cli(['restore', created.id, '--database', 'cli_remote_restored', '--clean'], server.token.admin)
  t.equal(replaced.code, 0, replaced.err)
  t.equal(await databaseFingerprint(cluster, 'cli_remote_restored'), await databaseFingerprint(cluster, 'cli_remote_shop'), 'replaced with the same content')
})

t.test('Ctrl-C during a remote create cancels the job on the server: exit 130, status cancelled', async t => {
  // the dump waits at the gate, so it is still running when Ctrl-C comes, however fast the machine
  const gate = await holdDumpGate(cluster, 'cli_remote_big')
  t.teardown(gate.release)
  const run = spawnCli(['create', '--server', url, '--token', operator, '--target', 'big', '--compression', 'zstd', '--level', '19'])
  await waitUntil(() => readdirSync(server.config.backupDir).some(f => f.endsWith('.partial')), 30_000, 'the server to start writing')
  run.child.kill('SIGINT')
  const r = await run.result
  t.equal(r.code, 130, r.stderr)
  t.match(r.stderr, /pgkeep: backup \S+ cancelled\n$/)
  const list = JSON.parse((await cli(['list', '--json', '--target', 'big'])).out) as ListResult
  t.equal(list.items[0]?.status, 'cancelled')
  t.same(readdirSync(server.config.backupDir).filter(f => f.endsWith('.partial')), [], 'no .partial left on the server')
})
