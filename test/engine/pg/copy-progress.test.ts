import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import t from 'tap'
import type { Target } from '../../../server/config.ts'
import { ProgressEstimator } from '../../../server/engine/dump/progress-estimator.ts'
import { cancelBackends, createCopyProgressPoller, inspectTarget, readCopyProgress, type CopySample } from '../../../server/engine/pg/inspector.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'

const DB = 'copyprog'
const cluster = await testCluster()
t.teardown(cluster.stop)
await cluster.createDatabase(DB)
// ~9 MB of COPY text: far more than the socket and pipe buffers, so a consumer that stops reading holds the COPY mid-table
await cluster.psql(`CREATE TABLE public.copyme AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 300000) g;
  CREATE TABLE public.aaa_small AS SELECT g AS id FROM generate_series(1, 20000) g;
  CREATE TABLE public.zzz_small AS SELECT g AS id FROM generate_series(1, 20000) g;
  ANALYZE`, DB)
const relid = Number(await cluster.psql(`SELECT 'public.copyme'::regclass::oid`, DB))
const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: DB }
const serverEnv = { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' }

/** A pg_dump of the big table whose stdout nobody reads yet: the COPY runs until the pipe fills, then waits. */
async function startHeldDump (appName: string, tables = ['public.copyme'], onLine?: (line: string) => void): Promise<{ child: ChildProcess, readBytes: (n: number) => Promise<void>, finish: () => Promise<number | null> }> {
  const child = spawn(join(cluster.binDir, 'pg_dump'), ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', DB, ...tables.flatMap(x => ['-t', x]), '--verbose'],
    { env: { ...serverEnv, PGAPPNAME: appName }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = createInterface({ input: child.stderr! })
  const started = new Promise<void>(resolve => lines.on('line', (line) => {
    onLine?.(line)
    if (line.includes('dumping contents of table "public.copyme"')) resolve()
  }))
  await started
  const stdout = child.stdout!
  const readBytes = async (n: number): Promise<void> => {
    let got = 0
    while (got < n) {
      const chunk = stdout.read() as Buffer | null
      if (chunk === null) { await once(stdout, 'readable'); continue }
      got += chunk.length
    }
  }
  const finish = async (): Promise<number | null> => {
    stdout.resume()
    const [code] = await once(child, 'exit') as [number | null]
    return code
  }
  return { child, readBytes, finish }
}

/** Polls until the condition holds: the server-side state we wait for has no event to listen to. */
async function until<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

t.test('readCopyProgress follows the COPY of a running pg_dump by application_name', async t => {
  const dump = await startHeldDump('pgkeep-test-read')
  const first = await until('a COPY sample', () => readCopyProgress(target, 'pgkeep-test-read'))
  t.equal(first.relid, relid)
  t.ok(first.tuplesProcessed > 0 && first.tuplesProcessed < 300_000, `mid-table: ${first.tuplesProcessed} tuples`)
  t.ok(first.bytesProcessed > 0)

  await dump.readBytes(2 * 1024 * 1024)
  const later = await until('the COPY to advance', async () => {
    const s = await readCopyProgress(target, 'pgkeep-test-read')
    return s !== undefined && s.tuplesProcessed > first.tuplesProcessed && s
  })
  t.equal(later.relid, relid)
  t.ok(later.bytesProcessed > first.bytesProcessed)

  t.equal(await readCopyProgress(target, 'pgkeep-test-someone-else'), undefined, 'another application_name sees nothing')
  t.equal(await dump.finish(), 0)
  t.equal(await readCopyProgress(target, 'pgkeep-test-read'), undefined, 'nothing once the dump is over')
})

async function inspectorBackends (): Promise<string[]> {
  return (await cluster.psql(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pgkeep-inspector'`)).split('\n').filter(Boolean)
}

t.test('the poller reuses one connection across polls, reports growing samples and closes on stop', async t => {
  const dump = await startHeldDump('pgkeep-test-poll')
  const samples: CopySample[] = []
  let notify = (): void => {}
  const poller = createCopyProgressPoller(target, 'pgkeep-test-poll', 20, (s) => { samples.push(s); notify() })
  const nextSample = async (): Promise<void> => { await new Promise<void>(resolve => { notify = resolve }) }

  await nextSample()
  // an earlier test's connection may take a moment to leave pg_stat_activity
  const before = await until('a single inspector connection', async () => { const b = await inspectorBackends(); return b.length === 1 && b })
  await dump.readBytes(2 * 1024 * 1024)
  await until('a larger sample', async () => samples.at(-1)!.tuplesProcessed > samples[0].tuplesProcessed)
  const polls = samples.length
  await nextSample()
  t.ok(samples.length > polls)
  t.same(await inspectorBackends(), before, 'still the same backend after many polls')
  t.ok(samples.every(s => s.relid === relid))
  for (let i = 1; i < samples.length; i++) {
    if (samples[i].tuplesProcessed < samples[i - 1].tuplesProcessed) t.fail('tuples went backwards')
  }

  t.equal(await dump.finish(), 0)
  await poller.stop()
  await until('the inspector backend to leave', async () => (await inspectorBackends()).length === 0)
  const count = samples.length
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(samples.length, count, 'no samples after stop()')
})

t.test('the poller swallows connection failures: progress is best effort', async t => {
  const poller = createCopyProgressPoller({ ...target, password: 'wrong' }, 'pgkeep-test-none', 10, () => t.fail('no sample expected'))
  // let it fail a few times over; nothing may escape as an unhandled error
  await new Promise(resolve => setTimeout(resolve, 300))
  await poller.stop()
  t.pass('stopped cleanly')
})

function psqlWithApp (appName: string, args: string[]): ChildProcess {
  return spawn(join(cluster.binDir, 'psql'), ['-X', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', DB, ...args],
    { env: { ...serverEnv, PGAPPNAME: appName }, stdio: ['pipe', 'pipe', 'pipe'] })
}

async function activeQuery (appName: string, like: string): Promise<boolean> {
  const out = await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${appName}' AND state = 'active' AND query LIKE '${like}'`)
  return out.trim() === '1'
}

t.test('cancelBackends cancels a running query with that application_name and returns 1', async t => {
  const psql = psqlWithApp('pgkeep-test-cancel', ['-c', 'SELECT pg_sleep(60)'])
  const exited = once(psql, 'exit')
  let stderr = ''
  psql.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  await until('pg_sleep to run', () => activeQuery('pgkeep-test-cancel', '%pg_sleep%'))
  const started = Date.now()
  t.equal(await cancelBackends(target, 'pgkeep-test-cancel'), 1)
  const [code] = await exited
  t.not(code, 0)
  t.match(stderr, /canceling statement due to user request/)
  t.ok(Date.now() - started < 10_000, 'well before the 60 s sleep would end')
  t.equal(await cancelBackends(target, 'pgkeep-test-cancel'), 0, 'nothing left to cancel')
})

t.test('cancelBackends terminates a backend that outlives the cancel', async t => {
  // psql reading a script from stdin stays connected after its statement is cancelled, like a stuck client
  const psql = psqlWithApp('pgkeep-test-terminate', [])
  const exited = once(psql, 'exit')
  let stderr = ''
  psql.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  psql.stdin!.write('BEGIN;\nSELECT pg_sleep(60);\n')
  await until('pg_sleep to run', () => activeQuery('pgkeep-test-terminate', '%pg_sleep%'))
  t.equal(await cancelBackends(target, 'pgkeep-test-terminate'), 1)
  await until('the backend to be gone', async () => (await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgkeep-test-terminate'`)).trim() === '0')
  t.match(stderr, /canceling statement due to user request/, 'cancelled first')
  // psql only learns of the termination when it next talks to the server
  psql.stdin!.end('SELECT 1;\n')
  await exited
  t.match(stderr, /terminating connection due to administrator command|server closed the connection/, 'then terminated')
})

t.test('the estimator fed by a real pg_dump moves smoothly through a big table and never backwards', async t => {
  const facts = await inspectTarget(target, { schemas: ['public'], excludeTables: [], schemaOnly: false, dataOnly: false })
  t.same(facts.tables.map(x => x.name), ['aaa_small', 'copyme', 'zzz_small'])
  const estimator = new ProgressEstimator(facts)
  const percents: number[] = []
  const look = (): void => { percents.push(estimator.snapshot().percent!) }
  const dump = await startHeldDump('pgkeep-test-live', ['public.*'], (line) => {
    const m = /^pg_dump: dumping contents of table "([^.]*)\.(.*)"$/.exec(line)
    if (m) { estimator.onTableStarted(m[1], m[2]); look() }
  })
  const small = facts.tables[0].bytes / facts.totalBytes * 100
  let copySamples = 0
  let notify = (): void => {}
  const poller = createCopyProgressPoller(target, 'pgkeep-test-live', 20, (s) => {
    estimator.onCopySample(s)
    look()
    copySamples++
    notify()
  })
  await new Promise<void>(resolve => { notify = resolve })
  const inside = estimator.snapshot()
  t.equal(inside.currentTable, 'public.copyme')
  t.equal(inside.tablesDone, 1)
  t.ok(inside.percent! > Math.floor(small * 10) / 10, `${inside.percent}% is past the small table's ${small.toFixed(1)}%`)

  let raw = 0
  dump.child.stdout!.on('data', (chunk: Buffer) => { estimator.onBytes(raw += chunk.length); look() })
  t.equal(await dump.finish(), 0)
  await poller.stop()
  t.ok(copySamples > 0)
  const before = estimator.snapshot()
  t.ok(before.percent! <= 99.9)
  t.equal(before.currentTable, 'public.zzz_small')
  t.equal(before.bytes, raw)
  estimator.complete()
  look()
  for (let i = 1; i < percents.length; i++) {
    if (percents[i] < percents[i - 1]) t.fail(`percent went back from ${percents[i - 1]} to ${percents[i]}`)
  }
  t.ok(percents.slice(0, -1).every(p => p <= 99.9))
  t.equal(percents.at(-1), 100)
  t.same(estimator.snapshot().tablesDone, 3)
})
