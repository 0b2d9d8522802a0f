import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import t from 'tap'
import type { BackupOptions, Compression } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import { createDecompressor } from '../../../server/engine/pg/codec.ts'
import { commitLocalPartial, LocalStorage } from '../../../server/engine/storage/local-storage.ts'
import { hashDirectory, removePartial, runDumpPipeline } from '../../../server/engine/dump/pipeline.ts'
import type { PgkeepError } from '../../../server/errors.ts'
import { prepareChildEnv } from '../../../server/engine/pg/passfile.ts'
import { buildPgDumpArgs, classifyPgFailure, parseDumpingTable, spawnPgDump } from '../../../server/engine/dump/pg-dump-process.ts'
import { findPgTool } from '../../../server/engine/pg/tools.ts'
import { FAKE_PG_DUMP, fakePgDumpEnv } from '../../helpers/fake-pg-dump.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'

const run = promisify(execFile)
const OPTIONS: BackupOptions = { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false }
const LEVEL: Record<Compression, number> = { zstd: 3, gzip: 6, none: 0 }

async function sha256OfFile (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function decompressedDigest (path: string, compression: Compression): Promise<{ bytes: number, sha256: string }> {
  const codec = await createDecompressor(compression)
  const hash = createHash('sha256')
  let bytes = 0
  await pipeline(createReadStream(path), codec.stream, new Writable({
    write (chunk: Buffer, _enc, done) { hash.update(chunk); bytes += chunk.length; done() },
  }))
  return { bytes, sha256: hash.digest('hex') }
}

/** An endless (or bounded) source of fresh, mildly compressible chunks, produced only on demand. */
function generated (totalBytes = Infinity, chunkSize = 256 * 1024): Readable {
  let sent = 0
  let n = 0
  return new Readable({
    highWaterMark: chunkSize,
    read () {
      if (sent >= totalBytes) { this.push(null); return }
      const size = Math.min(chunkSize, totalBytes - sent)
      const chunk = Buffer.allocUnsafe(size)
      for (let i = 0; i < size; i += 4) chunk.writeUInt32LE((n++ * 2654435761) >>> 20, Math.min(i, size - 4))
      sent += size
      this.push(chunk)
    },
  })
}

/** zstd children of this test process, read from /proc so the check does not trust our own bookkeeping. */
async function zstdChildren (): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const st = await readFile(`/proc/${entry}/stat`, 'utf8')
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(st)
      if (m && m[1] === 'zstd' && Number(m[2]) === process.pid) pids.push(Number(entry))
    } catch {
      // the process went away while we looked
    }
  }
  return pids
}

async function isRunning (pid: number): Promise<boolean> {
  try {
    // a zombie has exited: only its parent has yet to reap it
    return !/^\d+ \(.*\) Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

async function eventually (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const dir = await mkdtemp(join(tmpdir(), 'pgkeep-pipeline-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

t.test('real pg_dump output', async t => {
  const cluster = await testCluster()
  t.teardown(cluster.stop)
  await cluster.createDatabase('pipeline_shop')
  await cluster.psql(`create table orders as select g as id, md5(g::text) as note, now() as at from generate_series(1, 40000) g;
    create table items as select g as id, repeat('x', g % 50) as label from generate_series(1, 20000) g;`, 'pipeline_shop')
  const pgDump = await findPgTool('pg_dump', cluster.binDir)
  const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, database: 'pipeline_shop', password: cluster.password }
  const child = await prepareChildEnv(target, 'pgkeep-test', dir)
  t.teardown(child.dispose)

  for (const compression of ['zstd', 'gzip', 'none'] as const) {
    t.test(`a ${compression} file decompresses to exactly the bytes pg_dump wrote`, async t => {
      const partialPath = join(dir, `shop-${compression}.partial`)
      const args = buildPgDumpArgs({ format: 'custom', compression, level: LEVEL[compression], options: OPTIONS, pgDumpMajor: pgDump.major }, child.connArgs())
      const proc = spawnPgDump(pgDump.path, args, child.env)
      let lastSeen = 0
      // the test's own tap on pg_dump's output: what the stored file must decompress back to
      const rawHash = createHash('sha256')
      const tapped = proc.stdout.pipe(new Transform({ transform (chunk: Buffer, _enc, cb) { rawHash.update(chunk); cb(null, chunk) } }))
      const result = await runDumpPipeline({ source: tapped, compression, level: LEVEL[compression], outputs: [await partialOut(partialPath)], onBytes: n => { lastSeen = n } })
      const rawSha256 = rawHash.digest('hex')
      t.equal((await proc.exited).code, 0)
      t.ok(result.rawBytes > 1_000_000, `pg_dump wrote ${result.rawBytes} bytes`)
      t.equal(lastSeen, result.rawBytes, 'onBytes saw every raw byte')
      t.equal((await stat(partialPath)).size, result.sizeBytes, 'sizeBytes is the file size')
      t.equal(await sha256OfFile(partialPath), result.sha256, 'sha256 is the file checksum')
      t.same(await decompressedDigest(partialPath, compression), { bytes: result.rawBytes, sha256: rawSha256 }, 'round-trips to the raw stream')
      if (compression === 'none') t.equal(result.sha256, rawSha256)
      else t.ok(result.sizeBytes < result.rawBytes, 'compressed is smaller')
      t.equal((await stat(partialPath)).mode & 0o777, 0o640)
    })
  }

  t.test('a directory-format dump is hashed file by file with paths under its own name', async t => {
    const out = join(dir, 'shop.dir.partial')
    const args = buildPgDumpArgs({ format: 'directory', compression: 'gzip', level: 1, options: { ...OPTIONS, jobs: 2 }, pgDumpMajor: pgDump.major, outputDir: out }, child.connArgs())
    const proc = spawnPgDump(pgDump.path, args, child.env)
    const tables: string[] = []
    proc.onLine(l => { const tb = parseDumpingTable(l); if (tb) tables.push(`${tb.schema}.${tb.table}`) })
    proc.stdout.resume()
    t.equal((await proc.exited).code, 0)
    t.same(tables.sort(), ['public.items', 'public.orders'], 'parallel workers report each table too')
    const tree = await hashDirectory(out)
    const names = (await readdir(out)).sort()
    t.same(tree.files.map(f => f.path), names.map(n => `shop.dir.partial/${n}`), 'every file, sorted, relative to the parent')
    t.ok(tree.files.some(f => f.path.endsWith('/toc.dat')))
    for (const f of tree.files) {
      t.equal(f.sha256, await sha256OfFile(join(dir, f.path)), `${f.path} checksum`)
      t.equal(f.sizeBytes, (await stat(join(dir, f.path))).size, `${f.path} size`)
    }
    t.equal(tree.sizeBytes, tree.files.reduce((n, f) => n + f.sizeBytes, 0))
    t.equal(tree.sha256, createHash('sha256').update(tree.files.map(f => `${f.sha256}  ${f.path}\n`).join('')).digest('hex'))
    await commitLocalPartial(out, join(dir, 'shop.dir'))
    t.ok((await stat(join(dir, 'shop.dir', 'toc.dat'))).isFile(), 'committed directory is in place')
  })
})

t.test('memory stays flat while 200 MB flow through the pipeline', async t => {
  const partialPath = join(dir, 'big.partial')
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const result = await runDumpPipeline({
    source: generated(200 * 1024 * 1024),
    compression: 'zstd',
    level: 1,
    outputs: [await partialOut(partialPath)],
    onBytes: () => { const rss = process.memoryUsage.rss(); if (rss > peak) peak = rss },
  })
  t.equal(result.rawBytes, 200 * 1024 * 1024)
  const growthMb = (peak - baseline) / 1024 / 1024
  t.ok(growthMb < 60, `RSS grew by ${growthMb.toFixed(1)} MB`)
  await removePartial(partialPath)
})

t.test('aborting mid-stream kills zstd and rejects with an AbortError', async t => {
  const partialPath = join(dir, 'abort.partial')
  const ac = new AbortController()
  let zstdSeen: number[] = []
  let aborting = false
  const piped = runDumpPipeline({
    source: generated(),
    compression: 'zstd',
    level: 1,
    outputs: [await partialOut(partialPath)],
    signal: ac.signal,
    onBytes: n => {
      if (n < 4 * 1024 * 1024 || aborting) return
      aborting = true
      zstdChildren().then(p => { zstdSeen = p; ac.abort() }, () => {})
    },
  })
  const err = await piped.then(() => undefined, (e: unknown) => e as Error)
  t.equal(err?.name, 'AbortError')
  t.ok(zstdSeen.length > 0, 'zstd was running before the abort')
  await eventually('zstd to exit', async () => (await Promise.all(zstdSeen.map(isRunning))).every(running => !running))
  t.pass('zstd is gone')
  t.ok((await stat(partialPath)).isFile(), 'the partial is left for the caller to remove')
  await removePartial(partialPath)
})

t.test('a compressor killed mid-stream is reported by name and cause, not as a bare EPIPE', async t => {
  const partialPath = join(dir, 'killed-zstd.partial')
  let killing = false
  let killed: number[] = []
  const piped = runDumpPipeline({
    source: generated(),
    compression: 'zstd',
    level: 1,
    outputs: [await partialOut(partialPath)],
    onBytes: n => {
      if (n < 4 * 1024 * 1024 || killing) return
      killing = true
      zstdChildren().then(pids => { killed = pids; for (const p of pids) process.kill(p, 'SIGKILL') }, () => {})
    },
  })
  const err = await piped.then(() => undefined, (e: unknown) => e as PgkeepError)
  t.equal(killed.length, 1, 'one zstd was killed')
  t.match(err?.message, new RegExp(`^the compressor zstd \\(pid ${killed[0]}\\) was killed by SIGKILL`))
  t.notMatch(err?.message, /EPIPE/)
  t.same(err?.details, { process: 'zstd', pid: killed[0], exitCode: null, signal: 'SIGKILL' })
  await removePartial(partialPath)
})

t.test('an already aborted signal rejects before anything is written', async t => {
  const partialPath = join(dir, 'pre-aborted.partial')
  await t.rejects(runDumpPipeline({ source: generated(1024), compression: 'none', level: 0, outputs: [await partialOut(partialPath)], signal: AbortSignal.abort() }), { name: 'AbortError' })
  t.equal((await stat(partialPath)).size, 0, 'nothing written')
})

t.test('a full disk fails the pipeline with DISK_FULL', async t => {
  const mnt = join(dir, 'tiny')
  await mkdir(mnt)
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).then(() => true, () => false)
  if (mounted) t.teardown(() => run('umount', [mnt]).then(() => {}, () => {}))
  let source = generated(8 * 1024 * 1024)
  if (!mounted) {
    // no permission to mount: the same errno, injected where the write would have failed
    t.comment('tmpfs mount not permitted; injecting ENOSPC')
    source = new Readable({ read () { this.destroy(Object.assign(new Error('write failed'), { code: 'ENOSPC' })) } })
  }
  const err = await runDumpPipeline({ source, compression: 'none', level: 0, outputs: [await partialOut(join(mnt, 'full.partial'))] }).then(() => undefined, (e: unknown) => e as PgkeepError)
  t.equal(err?.code, 'DISK_FULL')
  t.match(err?.message, /no space left/)
})

t.test('a leftover partial file is never overwritten', async t => {
  const partialPath = join(dir, 'leftover.partial')
  await writeFile(partialPath, 'someone else')
  const err = await partialOut(partialPath).then(() => undefined, (e: unknown) => e as PgkeepError)
  t.equal(err?.code, 'CONFLICT')
  t.equal(await readFile(partialPath, 'utf8'), 'someone else')
})

t.test('a pg_dump that dies after writing a lot still leaves a file, and exited reports its code', async t => {
  const partialPath = join(dir, 'dies.partial')
  const proc = spawnPgDump(FAKE_PG_DUMP, ['--verbose', '-F', 'c'], fakePgDumpEnv({ bytes: 3 * 1024 * 1024, exit: 2, stderr: ['pg_dump: error: Dumping the contents of table "big" failed: PQgetResult() failed.'] }))
  const lines: string[] = []
  proc.onLine(l => lines.push(l))
  const result = await runDumpPipeline({ source: proc.stdout, compression: 'zstd', level: 1, outputs: [await partialOut(partialPath)] })
  const exit = await proc.exited
  t.equal(exit.code, 2)
  t.equal(result.rawBytes, 3 * 1024 * 1024)
  t.equal((await stat(partialPath)).size, result.sizeBytes)
  t.match(lines.at(-1), /PQgetResult\(\) failed/)
  const failure = classifyPgFailure(exit.stderrTail, exit.code)
  t.equal(failure.code, 'PG_DUMP_FAILED')
  t.match(failure.message, /exited with code 2: .*PQgetResult/)
  await removePartial(partialPath)
})

t.test('stderr lines arrive while pg_dump runs, and a hanging one can be killed', async t => {
  const { stdout } = await run(FAKE_PG_DUMP, ['--version'])
  t.match(stdout, /^pg_dump \(PostgreSQL\) 15\.\d+/)
  const proc = spawnPgDump(FAKE_PG_DUMP, [], fakePgDumpEnv({ bytes: 1024, sleepMs: 60_000 }))
  let got = 0
  let lines = 0
  // it sleeps with its pipes open: only a kill ends it, once the first line and every byte are in
  const killWhenReady = (): void => { if (got >= 1024 && lines > 0) proc.kill('SIGTERM') }
  proc.stdout.on('data', (c: Buffer) => { got += c.length; killWhenReady() })
  proc.onLine(() => { lines++; killWhenReady() })
  const exit = await proc.exited
  t.equal(exit.signal, 'SIGTERM')
  t.equal(exit.code, null)
  t.match(exit.stderrTail, [/fake pg_dump writing 1024 bytes/])
})

t.test('committing a partial renames it, durably, and never replaces an existing backup', async t => {
  const partialPath = join(dir, 'c.dump.partial')
  const finalPath = join(dir, 'c.dump')
  await writeFile(partialPath, 'first')
  await commitLocalPartial(partialPath, finalPath)
  t.equal(await readFile(finalPath, 'utf8'), 'first')
  await t.rejects(stat(partialPath), { code: 'ENOENT' })

  await writeFile(partialPath, 'second')
  await t.rejects(commitLocalPartial(partialPath, finalPath), { code: 'CONFLICT' })
  t.equal(await readFile(finalPath, 'utf8'), 'first', 'the existing backup is untouched')
  t.equal(await readFile(partialPath, 'utf8'), 'second', 'the partial stays for the caller')

  await mkdir(join(dir, 'd.dir.partial'))
  await mkdir(join(dir, 'd.dir'))
  await t.rejects(commitLocalPartial(join(dir, 'd.dir.partial'), join(dir, 'd.dir')), { code: 'CONFLICT' }, 'an existing directory, even empty, is not replaced')
})

t.test('removing a partial removes files and directories and ignores missing ones', async t => {
  const d = join(dir, 'gone.dir.partial')
  await mkdir(d)
  await writeFile(join(d, 'toc.dat'), 'x')
  await removePartial(d)
  await t.rejects(stat(d), { code: 'ENOENT' })
  await removePartial(d)
  await removePartial(join(dir, 'never-existed.partial'))
  t.pass('no error for missing paths')
})

/** The local store's own writer for `<dir>/<name>.partial`, as the dump job gets it. */
async function partialOut (partialPath: string): Promise<Writable> {
  return (await new LocalStorage(dirname(partialPath)).createWriter(basename(partialPath, '.partial'))).stream
}
