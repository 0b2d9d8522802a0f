// Issue 9 benchmark: what age encryption adds to the dump pipeline (target <= 5% of dump time), and whether the
// npm implementation (age-encryption, by age's author) keeps up with the age CLI. Size by BENCH_SIZE_MB
// (default 1024, uncompressed), repetitions by BENCH_RUNS (default 3, medians shown).
//
// The data is generated table rows (random hex ids and hashes, words from a small vocabulary, numbers and
// timestamps; zstd -3 makes them about 3x smaller), written to a file first so that generating it is not timed.
// Two measurements, each with and without age after zstd, through pgkeep's own stages:
//  - the real dump: the rows loaded into a table of a throwaway cluster, `pg_dump -Fc -Z0 | zstd -3 -T0 | [age]`
//    into a file; this is the figure the target is about (BENCH_PG=0 skips it);
//  - the pipeline alone: the rows as COPY text read from a file instead of pg_dump, an upper bound of the share,
//    since nothing else competes for the time.
//
// The npm comparison needs the package, which pgkeep does not depend on: `npm install --no-save age-encryption`
// (or PGKEEP_BENCH_AGE_NPM=/path/to/node_modules/age-encryption); without it that part is skipped.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, type Duplex } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createEncryptor, createDecryptor, createZstdEncryptor } from '../server/engine/pg/age.ts'
import { createCompressor } from '../server/engine/pg/codec.ts'
import { startCluster } from '../test/helpers/pg-cluster.ts'
import { fmtMb, fmtMs, line } from './measure.ts'
import { newAgeKey } from '../test/helpers/age-keys.ts'

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024)
const runs = Number(process.env.BENCH_RUNS ?? 3)
const work = mkdtempSync(join(tmpdir(), 'pgkeep-bench-age-'))

const WORDS = ['active', 'pending', 'shipped', 'customer', 'invoice', 'paris', 'berlin', 'refund', 'premium', 'standard',
  'the', 'order', 'was', 'delivered', 'late', 'on', 'time', 'by', 'courier', 'note', 'null', 'ok', 'retry', 'failed']

/** One block of COPY rows: what a table of orders with hashes and free text looks like in a dump. */
function copyBlock (firstId: number, rows: number): Buffer {
  const hex = randomBytes(rows * 24).toString('hex')
  const pick = randomBytes(rows * 8)
  const lines: string[] = []
  for (let i = 0; i < rows; i++) {
    const note = Array.from({ length: 6 }, (_, k) => WORDS[pick[i * 8 + k] % WORDS.length]).join(' ')
    const day = String(1 + (pick[i * 8 + 6] % 28)).padStart(2, '0')
    lines.push(`${firstId + i}\t${hex.slice(i * 48, i * 48 + 32)}\t${WORDS[pick[i * 8 + 7] % 10]}\t${(pick[i * 8] * 37.5).toFixed(2)}\t2026-03-${day} 10:${day}:00+00\t${note}\t${hex.slice(i * 48 + 32, i * 48 + 48)}`)
  }
  return Buffer.from(lines.join('\n') + '\n')
}

function writeInput (path: string, mb: number): void {
  const fd = openSync(path, 'w')
  let written = 0
  let id = 1
  while (written < mb * 1024 * 1024) {
    const block = copyBlock(id, 20_000)
    id += 20_000
    written += writeSync(fd, block)
  }
  closeSync(fd)
}

/**
 * CPU seconds (user+system) of this process (node relaying the bytes) and of its reaped children (pg_dump, zstd,
 * age), from /proc. The PostgreSQL server's own work is not counted.
 */
function cpuSeconds (): { self: number, children: number } {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')
  // fields after "(comm) ": utime=11, stime=12, cutime=13, cstime=14 (0-based from state), in clock ticks
  return { self: (Number(fields[11]) + Number(fields[12])) / 100, children: (Number(fields[13]) + Number(fields[14])) / 100 }
}

interface Timing { ms: number, cpu: number, nodeCpu: number, bytes: number }

function source (path: string): Readable { return createReadStream(path, { highWaterMark: 1024 * 1024 }) }

/** Times `streams` (a source and its stages) piped into the file `out`, with the CPU it cost. */
async function timed (out: string, streams: () => Promise<Array<Readable | Duplex>>): Promise<Timing> {
  const cpu0 = cpuSeconds()
  const t0 = performance.now()
  await pipeline([...await streams(), createWriteStream(out)])
  const ms = performance.now() - t0
  const cpu1 = cpuSeconds()
  const nodeCpu = cpu1.self - cpu0.self
  return { ms, cpu: nodeCpu + cpu1.children - cpu0.children, nodeCpu, bytes: statSync(out).size }
}

function median (xs: number[]): number { return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] }
function medianTiming (ts: Timing[]): Timing {
  return { ms: median(ts.map(t => t.ms)), cpu: median(ts.map(t => t.cpu)), nodeCpu: median(ts.map(t => t.nodeCpu)), bytes: ts[0].bytes }
}
const cpuText = (t: Timing): string => `cpu ${t.cpu.toFixed(2)} s (node ${t.nodeCpu.toFixed(2)} s)`
function mbps (bytes: number, ms: number): string { return `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)} MB/s` }

interface AgeNpm {
  Encrypter: new () => { addRecipient: (r: string) => void, encrypt: (s: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>> }
  Decrypter: new () => { addIdentity: (i: string) => void, decrypt: (s: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>> }
}

async function loadAgeNpm (): Promise<AgeNpm | undefined> {
  const where = process.env.PGKEEP_BENCH_AGE_NPM
  try {
    return where ? await import(join(where, 'dist/index.js')) as AgeNpm : await import('age-encryption' as string) as AgeNpm
  } catch {
    return undefined
  }
}

try {
  const { recipient } = newAgeKey(work, 'key')
  const secret = /AGE-SECRET-KEY-1\S+/.exec(readFileSync(join(work, 'key.txt'), 'utf8'))![0]
  const input = join(work, 'dump.copy')
  console.log(`writing ~${sizeMb} MB of pg_dump-like COPY text...`)
  writeInput(input, sizeMb)
  const inputBytes = statSync(input).size

  /** Runs the pipeline with and without age, alternating so a noisy neighbour on a shared machine spreads over both. */
  const costText = (base: Timing, t: Timing): string =>
    `${t.ms >= base.ms ? '+' : ''}${((t.ms / base.ms - 1) * 100).toFixed(1)}%  (cpu ${t.cpu >= base.cpu ? '+' : ''}${(t.cpu - base.cpu).toFixed(2)} s)`

  /**
   * Runs the pipeline without age, with age as a stage of its own, and with zstd and age chained into one stage
   * (kernel pipe between them), alternating so a noisy neighbour on a shared machine spreads over all three.
   */
  async function compare (label: string, from: () => Readable, out: string): Promise<{ plain: Timing }> {
    const plainRuns: Timing[] = []
    const agedRuns: Timing[] = []
    const chainedRuns: Timing[] = []
    for (let i = 0; i < runs; i++) {
      plainRuns.push(await timed(`${out}.zst`, async () => [from(), (await createCompressor('zstd', 3)).stream]))
      agedRuns.push(await timed(`${out}.zst.age`, async () => [from(), (await createCompressor('zstd', 3)).stream, (await createEncryptor([recipient])).stream]))
      chainedRuns.push(await timed(`${out}.chained.age`, async () => [from(), (await createZstdEncryptor(3, [recipient])).stream]))
    }
    const plain = medianTiming(plainRuns)
    const aged = medianTiming(agedRuns)
    const chained = medianTiming(chainedRuns)
    console.log(`\n${label} (load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores): zstd output ${fmtMb(plain.bytes)}, encrypted ${fmtMb(aged.bytes)}; ${runs} runs each, medians`)
    line('  -> zstd -3 -T0 -> file', `${fmtMs(plain.ms)}  ${cpuText(plain)}`)
    line('  -> zstd -3 -T0 -> age (CLI) -> file', `${fmtMs(aged.ms)}  ${cpuText(aged)}`)
    line('  -> [zstd -3 -T0 | age] (one stage) -> file', `${fmtMs(chained.ms)}  ${cpuText(chained)}`)
    line('  encryption cost, age as its own stage', costText(plain, aged), '<= 5%', aged.ms <= plain.ms * 1.05)
    line('  encryption cost, zstd | age chained', costText(plain, chained), '<= 5%', chained.ms <= plain.ms * 1.05)
    return { plain }
  }

  if (process.env.BENCH_PG !== '0') {
    console.log('loading it into a table of a throwaway cluster...')
    const cluster = await startCluster()
    try {
      await cluster.createDatabase('bench_age')
      await cluster.psql('CREATE TABLE orders (id bigint PRIMARY KEY, ref text, status text, amount numeric(12,2), created_at timestamptz, note text, token text)', 'bench_age')
      await cluster.psql(`\\copy orders FROM '${input}'`, 'bench_age')
      const env = { PATH: process.env.PATH, PGPASSWORD: cluster.password }
      const pgDump = (): Readable => spawn(join(cluster.binDir, 'pg_dump'), ['-Fc', '-Z0', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', cluster.user, '-d', 'bench_age'],
        { env, stdio: ['ignore', 'pipe', 'inherit'] }).stdout
      await compare(`real dump of a ${fmtMb(inputBytes)} table (pg_dump -Fc -Z0)`, pgDump, join(work, 'pgdump'))
    } finally {
      await cluster.stop()
    }
  }
  const { plain } = await compare(`the pipeline alone, ${fmtMb(inputBytes)} of COPY text from a file`, () => source(input), join(work, 'out'))

  // the same two pipelines as a shell runs them: the floor, with no node relaying any byte
  const shell = async (command: string): Promise<Timing> => {
    const out = join(work, 'shell.out')
    const cpu0 = cpuSeconds()
    const t0 = performance.now()
    const child = spawn('bash', ['-o', 'pipefail', '-c', `${command} > "$OUT"`], { env: { PATH: process.env.PATH, IN: input, R: recipient, OUT: out }, stdio: 'inherit' })
    // timed to the shell's exit, so its CPU (and its children's) is counted once it has been reaped
    if (await new Promise(resolve => child.on('close', resolve)) !== 0) throw new Error(`${command} failed`)
    const ms = performance.now() - t0
    const cpu1 = cpuSeconds()
    return { ms, cpu: cpu1.self + cpu1.children - cpu0.self - cpu0.children, nodeCpu: cpu1.self - cpu0.self, bytes: statSync(out).size }
  }
  const shellPlain: Timing[] = []
  const shellAged: Timing[] = []
  for (let i = 0; i < runs; i++) {
    shellPlain.push(await shell('zstd -3 -T0 -q -c < "$IN"'))
    shellAged.push(await shell('zstd -3 -T0 -q -c < "$IN" | age -e -r "$R"'))
  }
  const sp = medianTiming(shellPlain)
  const sa = medianTiming(shellAged)
  line('  shell: zstd -3 -T0 < file', `${fmtMs(sp.ms)}  ${cpuText(sp)}`)
  line('  shell: zstd -3 -T0 < file | age', `${fmtMs(sa.ms)}  ${cpuText(sa)}`)
  line('  encryption cost in the shell', costText(sp, sa))

  // the cipher alone, on what it really gets: the compressed stream
  const compressed = join(work, 'out.zst')
  const cliEnc = await timed(join(work, 'cli.age'), async () => [source(compressed), (await createEncryptor([recipient])).stream])
  const cliDec = await timed(join(work, 'cli.out'), async () => [source(join(work, 'cli.age')), (await createDecryptor(join(work, 'key.txt'))).stream])
  console.log(`\nthe cipher alone over the ${fmtMb(plain.bytes)} compressed stream:`)
  line('age CLI encrypt', `${fmtMs(cliEnc.ms)}  ${mbps(plain.bytes, cliEnc.ms)}  ${cpuText(cliEnc)}`)
  line('age CLI decrypt', `${fmtMs(cliDec.ms)}  ${mbps(plain.bytes, cliDec.ms)}  ${cpuText(cliDec)}`)
  const npm = await loadAgeNpm()
  if (npm === undefined) {
    console.log('age-encryption (npm) not installed: comparison skipped (npm install --no-save age-encryption)')
  } else {
    const encrypter = new npm.Encrypter()
    encrypter.addRecipient(recipient)
    const npmEnc = await timed(join(work, 'npm.age'), async () => {
      const web = await encrypter.encrypt(Readable.toWeb(source(compressed)) as ReadableStream<Uint8Array>)
      return [Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>)]
    })
    const decrypter = new npm.Decrypter()
    decrypter.addIdentity(secret)
    const npmDec = await timed(join(work, 'npm.out'), async () => {
      const web = await decrypter.decrypt(Readable.toWeb(source(join(work, 'npm.age'))) as ReadableStream<Uint8Array>)
      return [Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>)]
    })
    line('age-encryption (npm) encrypt', `${fmtMs(npmEnc.ms)}  ${mbps(plain.bytes, npmEnc.ms)}  ${cpuText(npmEnc)}`,
      'as fast as the CLI (<= 1.1x)', npmEnc.ms <= cliEnc.ms * 1.1)
    line('age-encryption (npm) decrypt', `${fmtMs(npmDec.ms)}  ${mbps(plain.bytes, npmDec.ms)}  ${cpuText(npmDec)}`,
      'as fast as the CLI (<= 1.1x)', npmDec.ms <= cliDec.ms * 1.1)
    // both speak the same format: what npm wrote, the CLI reads
    execFileSync('age', ['-d', '-i', join(work, 'key.txt'), '-o', join(work, 'npm-by-cli.out'), join(work, 'npm.age')])
    console.log(`npm's ciphertext decrypts with the CLI: ${statSync(join(work, 'npm-by-cli.out')).size === plain.bytes ? 'yes' : 'NO'}`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
