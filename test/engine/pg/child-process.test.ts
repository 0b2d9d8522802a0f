import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Target } from '../../../server/config.ts'
import { spawnPgDump } from '../../../server/engine/dump/pg-dump-process.ts'
import { childEnv, childrenDieWithParent } from '../../../server/engine/pg/child-process.ts'
import { createCompressor } from '../../../server/engine/pg/codec.ts'
import { prepareChildEnv } from '../../../server/engine/pg/passfile.ts'
import { isProcessAlive } from '../../../server/engine/store/file-lock.ts'
import { waitUntil } from '../../helpers/service.ts'

const SECRETS = {
  DATABASE_URL: 'postgres://app:db-url-Secr3t@db.example/app',
  PGKEEP_JWT_SECRET: 'jwt-Secr3t-0123456789abcdef0123456789abcdef',
  PGPASSWORD: 'pgpassword-Secr3t',
  AWS_SECRET_ACCESS_KEY: 'aws-Secr3t',
}

function environOf (pid: number): Record<string, string> {
  const text = readFileSync(`/proc/${pid}/environ`, 'utf8')
  return Object.fromEntries(text.split('\0').filter(Boolean).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
}

/** Gone, or a zombie waiting for whoever adopted it to reap it: either way no longer running. */
function isGone (pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).startsWith('Z') } catch { return true }
}

function parseEnvOutput (text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter(Boolean).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
}

function assertNoSecret (t: Test, env: Record<string, string>, what: string): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    t.notOk(name in env, `${what}: no ${name}`)
    t.notOk(Object.values(env).some(v => v.includes(value)), `${what}: no value of ${name}`)
  }
  t.notOk(Object.keys(env).some(k => k.startsWith('PGKEEP_')), `${what}: no PGKEEP_* variable`)
}

t.test('children get a minimal environment: none of pgkeep\'s secrets reach pg_dump, zstd or a probe', async t => {
  const saved = { ...process.env }
  Object.assign(process.env, SECRETS)
  t.teardown(() => {
    for (const name of Object.keys(SECRETS)) delete process.env[name]
    Object.assign(process.env, saved)
  })

  t.test('childEnv keeps PATH, HOME, TZ and the C locale, plus exactly what the caller names', async t => {
    const env = childEnv({ PGAPPNAME: 'x', PGSSLMODE: undefined })
    t.equal(env.PATH, process.env.PATH)
    t.equal(env.HOME, process.env.HOME)
    t.equal(env.LC_ALL, 'C')
    t.equal(env.PGAPPNAME, 'x')
    t.notOk('PGSSLMODE' in env, 'an undefined extra is left out')
    assertNoSecret(t, env as Record<string, string>, 'childEnv()')
  })

  t.test('the pg tools\' environment (through the spawn site pg_dump uses) holds the passfile and nothing secret', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'pgkeep-childenv-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const target: Target = { name: 't', host: 'db.example', port: 5432, user: 'app', database: 'app', password: 'target-Secr3t' }
    const pg = await prepareChildEnv(target, 'pgkeep-env-test', dir)
    t.teardown(pg.dispose)
    // /usr/bin/env stands in for pg_dump: it prints exactly the environment it was given
    const run = spawnPgDump('/usr/bin/env', [], pg.env)
    let out = ''
    run.stdout.on('data', (d: Buffer) => { out += d.toString() })
    t.equal((await run.exited).code, 0)
    const env = parseEnvOutput(out)
    assertNoSecret(t, env, 'pg_dump')
    t.notOk(Object.values(env).some(v => v.includes('target-Secr3t')), 'the target password is not in the environment')
    t.match(env.PGPASSFILE, /\.pgkeep\/run\//)
    t.equal(env.PGAPPNAME, 'pgkeep-env-test')
  })

  t.test('zstd, started by the compressor, sees no secret either', async t => {
    const zstd = await createCompressor('zstd', 3)
    zstd.stream.on('error', () => {}) // the kill below ends it early, on purpose
    t.teardown(() => zstd.kill('SIGKILL'))
    t.ok(zstd.pid, 'zstd runs as a child process')
    // setpriv execs zstd in place: wait for the exec, then read what the kernel says zstd was given
    await waitUntil(() => readFileSync(`/proc/${zstd.pid}/cmdline`, 'utf8').split('\0')[0].endsWith('zstd'), 10000, 'zstd to be exec\'d')
    assertNoSecret(t, environOf(zstd.pid as number), 'zstd')
  })
})

t.test('a child started through spawnChild dies when its pgkeep process is killed with -9', { skip: childrenDieWithParent() ? false : 'no setpriv here' }, async t => {
  // a stand-in pgkeep: starts `sleep` the way pgkeep starts pg_dump, prints its pid, and waits
  const script = `
    const { spawnChild, childEnv } = await import(${JSON.stringify(new URL('../../../server/engine/pg/child-process.ts', import.meta.url).href)})
    const child = spawnChild('/bin/sleep', ['600'], { env: childEnv(), detached: true, stdio: 'ignore' })
    process.stdout.write(child.pid + '\\n')
    setInterval(() => {}, 1000)
  `
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    // not the test runner's NODE_OPTIONS and loaders: a plain node process, as the CLI would be
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const childPid = await new Promise<number>((resolve, reject) => {
    let out = ''
    parent.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(Number(out.trim())) })
    parent.once('exit', () => reject(new Error('the stand-in exited early')))
  })
  t.teardown(() => { if (isProcessAlive(childPid)) process.kill(childPid, 'SIGKILL') })
  await waitUntil(() => readFileSync(`/proc/${childPid}/cmdline`, 'utf8').startsWith('/bin/sleep'), 10000, 'sleep to be exec\'d')
  t.ok(isProcessAlive(childPid), 'the child runs')
  // a process group of its own: only a parent-death signal can reach it when the parent dies
  parent.kill('SIGKILL')
  await new Promise(resolve => parent.once('exit', resolve))
  const killedAt = Date.now()
  await waitUntil(() => isGone(childPid), 10000, 'the child to die')
  t.pass('the child died with its parent')
  t.comment(`child gone ${Date.now() - killedAt} ms after the parent was reaped`)
})
