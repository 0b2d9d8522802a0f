import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { createEncryptor, createZstdDecryptor, createZstdEncryptor } from '../../../server/engine/pg/age.ts'
import type { CodecStage } from '../../../server/engine/pg/child-stage.ts'
import { newAgeKey } from '../../helpers/age-keys.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-chain-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const { identity: key, recipient } = newAgeKey(dir, 'key')

const plain = Buffer.concat(Array.from({ length: 300 }, (_, i) => Buffer.from(`${i}\t${randomBytes(1500).toString('hex')}\tsame words again\n`)))

/** Runs `input` through `stage` into `out`; on failure, the stage's own reason, as the engine's pipelines ask for it. */
async function run (stage: CodecStage, input: Buffer, out: string): Promise<{ code?: string, message: string } | undefined> {
  try {
    await pipeline(Readable.from([input]), stage.stream, createWriteStream(out))
    return undefined
  } catch (err) {
    return (await stage.failure!()) ?? err as { message: string }
  }
}

t.test('zstd | age as one stage writes what stock `age -d | zstd -dc` reads back, and reads it back itself', async t => {
  const enc = join(dir, 'chain.zst.age')
  t.equal(await run(await createZstdEncryptor(3, [recipient]), plain, enc), undefined)
  const stock = execFileSync('sh', ['-c', 'age -d -i "$1" "$2" | zstd -dc', 'sh', key, enc], { maxBuffer: 64 * 1024 * 1024 })
  t.ok(stock.equals(plain), 'stock tools')
  const back = join(dir, 'chain.out')
  const decryptor = await createZstdDecryptor(key)
  t.equal(await run(decryptor, readFileSync(enc), back), undefined)
  t.ok(readFileSync(back).equals(plain), 'our decrypting stage')
})

t.test('a damaged file is reported as age\'s integrity failure, not as zstd choking on the cut stream', async t => {
  const enc = join(dir, 'damaged.zst.age')
  await run(await createZstdEncryptor(3, [recipient]), plain, enc)
  const bytes = readFileSync(enc)
  for (const damaged of [bytes.subarray(0, Math.floor(bytes.length * 0.7)), Buffer.from(bytes.map((b, i) => i === bytes.length - 100 ? b ^ 1 : b))]) {
    const err = await run(await createZstdDecryptor(key), damaged, join(dir, 'discard'))
    t.equal(err?.code, 'INTEGRITY_FAILED')
    t.match(err?.message, /^the encrypted backup is damaged or truncated: age: /)
  }
})

t.test('a downstream failure is the stage\'s: age-encrypted bytes that are not zstd fail in zstd -d', async t => {
  const enc = join(dir, 'not-zstd.age')
  await run(await createEncryptor([recipient]), plain, enc)
  const err = await run(await createZstdDecryptor(key), readFileSync(enc), join(dir, 'discard'))
  t.match(err?.message, /^the compressor zstd \(pid \d+\) exited with code 1/)
})

t.test('killing the chain mid-stream fails the pipeline instead of hanging it', async t => {
  const stage = await createZstdEncryptor(3, [recipient])
  const endless = new Readable({ read () { this.push(randomBytes(256 * 1024)) } })
  stage.stream.once('data', () => { stage.kill() })
  const failed = await pipeline(endless, stage.stream, createWriteStream(join(dir, 'killed'))).then(() => false, () => true)
  t.ok(failed, 'the pipeline failed')
  t.match((await stage.failure!())?.message, /was killed by SIGTERM/)
})
