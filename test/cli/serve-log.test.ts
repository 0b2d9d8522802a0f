import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { TEST_JWT_SECRET } from '../helpers/app.ts'
import { BIN, listeningUrl, spawnCli } from './cli-runner.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-serve-log-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
// no target needed to start: the server listens and logs whatever it can reach
const env = { PGKEEP_BACKUP_DIR: dir, PGKEEP_JWT_SECRET: TEST_JWT_SECRET, PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' }

/** Resolves with everything written until `text` appears (or rejects when the process ends first). */
function until (child: ReturnType<typeof spawn>, text: RegExp): Promise<string> {
  let out = ''
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); if (text.test(out)) resolve(out) })
    child.once('close', () => reject(new Error(`ended before ${text}: ${out}`)))
  })
}

t.test('serve on a terminal logs one readable line per event, not JSON', { skip: process.platform === 'linux' ? false : 'needs util-linux script(1)' }, async t => {
  // script(1) gives the server a pseudo-terminal as stdout, as an admin's shell would
  const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} serve --port 0`, '/dev/null'], { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} })
  const out = await until(child, /Server listening at/)
  const closed = new Promise(resolve => child.once('close', resolve))
  process.kill(-child.pid!, 'SIGTERM')
  await closed
  const line = out.split(/\r?\n/).find(l => l.includes('Server listening at')) ?? ''
  // eslint-disable-next-line no-control-regex
  const plain = line.replace(/\x1b\[[0-9;]*m/g, '')
  t.match(plain, /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?\] INFO: Server listening at http:\/\/127\.0\.0\.1:\d+/)
  t.notOk(out.split(/\r?\n/).some(l => l.trimStart().startsWith('{"level"')), 'no JSON line')
})

t.test('serve without a terminal logs JSON lines (systemd, files, log shippers)', async t => {
  const server = spawnCli(['serve', '--port', '0'], env)
  t.teardown(() => { server.child.kill('SIGKILL') })
  let log = ''
  server.child.stdout?.on('data', (d: Buffer) => { log += d.toString() })
  await listeningUrl(server)
  server.child.kill('SIGTERM')
  await server.result
  const lines = log.trim().split('\n')
  t.ok(lines.length > 0)
  for (const l of lines) t.match(JSON.parse(l), { level: Number, time: Number, msg: String }, l.slice(0, 80))
})
