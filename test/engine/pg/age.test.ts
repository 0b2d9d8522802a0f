import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { createDecryptor, createEncryptor, identityMismatch, identityPublicKeys } from '../../../server/engine/pg/age.ts'
import { createCompressor } from '../../../server/engine/pg/codec.ts'
import type { CodecStage } from '../../../server/engine/pg/child-stage.ts'
import { newAgeKey, type AgeKey } from '../../helpers/age-keys.ts'

const dir = mkdtempSync(join(tmpdir(), 'pgkeep-age-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const newKey = (name: string): AgeKey => newAgeKey(dir, name)

const alice = newKey('alice')
const bob = newKey('bob')
const mallory = newKey('mallory')

/** Some dump-like text with incompressible parts, so compression leaves real work for the cipher. */
const plain = Buffer.concat(Array.from({ length: 200 }, (_, i) =>
  Buffer.from(`COPY public.t (id, v) FROM stdin;\n${i}\t${randomBytes(2048).toString('hex')}\n\\.\n`)))

async function through (stages: CodecStage[], input: Buffer, out: string): Promise<void> {
  await pipeline([Readable.from([input]), ...stages.map(s => s.stream), createWriteStream(out)])
}

async function failureOf (stages: CodecStage[], input: Buffer | string): Promise<{ code?: string, message: string }> {
  const source = typeof input === 'string' ? createReadStream(input) : Readable.from([input])
  try {
    await pipeline([source, ...stages.map(s => s.stream), createWriteStream(join(dir, 'discard'))])
  } catch (err) {
    // as the engine's pipelines do: a bare EPIPE only says a child stopped reading, the child says why
    for (const stage of stages) {
      const why = await stage.failure?.()
      if (why) return why
    }
    return err as { code?: string, message: string }
  }
  throw new Error('the pipeline did not fail')
}

t.test('what our encryptor writes our decryptor reads back byte for byte', async t => {
  const enc = join(dir, 'round.age')
  await through([await createEncryptor([alice.recipient])], plain, enc)
  t.notOk(readFileSync(enc).includes(plain.subarray(0, 64)), 'the stored bytes are not the plain text')
  t.ok(readFileSync(enc).subarray(0, 21).toString() === 'age-encryption.org/v1', 'an age v1 file')
  const back = join(dir, 'round.out')
  const decryptor = await createDecryptor(alice.identity)
  await through([decryptor], readFileSync(enc), back)
  t.ok(readFileSync(back).equals(plain))
  t.equal(await decryptor.failure!(), undefined, 'age exited cleanly')
})

t.test('a zstd-then-age file opens with stock tools: age -d -i key F | zstd -dc', async t => {
  const enc = join(dir, 'dump.zst.age')
  await through([await createCompressor('zstd', 3), await createEncryptor([alice.recipient])], plain, enc)
  const out = execFileSync('sh', ['-c', 'age -d -i "$1" "$2" | zstd -dc', 'sh', alice.identity, enc], { maxBuffer: 64 * 1024 * 1024 })
  t.ok(out.equals(plain))
})

t.test('with two recipients each key alone decrypts (key rotation)', async t => {
  const enc = join(dir, 'two.age')
  await through([await createEncryptor([alice.recipient, bob.recipient])], plain, enc)
  for (const key of [alice, bob]) {
    t.ok(execFileSync('age', ['-d', '-i', key.identity, enc], { maxBuffer: 64 * 1024 * 1024 }).equals(plain), `stock age with ${key.identity}`)
    const back = join(dir, 'two.out')
    await through([await createDecryptor(key.identity)], readFileSync(enc), back)
    t.ok(readFileSync(back).equals(plain), `our decryptor with ${key.identity}`)
  }
})

t.test('a backup made for other keys fails with a clear message, not as damage', async t => {
  const enc = join(dir, 'for-alice.age')
  await through([await createEncryptor([alice.recipient])], plain, enc)
  const err = await failureOf([await createDecryptor(mallory.identity)], enc)
  t.equal(err.code, 'CONFIG_INVALID')
  t.match(err.message, /^none of the configured identities can decrypt this backup/)
  t.notMatch(err.message, mallory.secret)
})

t.test('a truncated or damaged encrypted file fails with INTEGRITY_FAILED', async t => {
  const enc = join(dir, 'whole.age')
  await through([await createEncryptor([alice.recipient])], plain, enc)
  const whole = readFileSync(enc)
  const damaged = Buffer.from(whole)
  damaged[Math.floor(whole.length / 2)] ^= 1
  const cases: [string, Buffer][] = [
    ['cut in the payload', whole.subarray(0, Math.floor(whole.length / 2))],
    ['cut in the header', whole.subarray(0, 60)],
    ['a flipped bit', damaged],
    ['empty', Buffer.alloc(0)],
  ]
  for (const [what, bytes] of cases) {
    const err = await failureOf([await createDecryptor(alice.identity)], bytes)
    t.equal(err.code, 'INTEGRITY_FAILED', what)
    t.match(err.message, /damaged or truncated|not age-encrypted/, what)
  }
  const notAge = await failureOf([await createDecryptor(alice.identity)], plain)
  t.equal(notAge.code, 'INTEGRITY_FAILED')
  t.match(notAge.message, /^the stored file is not age-encrypted/)
})

t.test('an identity file that is no key fails as configuration, without its contents in the message', async t => {
  const bad = join(dir, 'not-a-key.txt')
  writeFileSync(bad, 'AGE-SECRET-KEY-1NOTAREALKEYATALL\n', { mode: 0o600 })
  const enc = join(dir, 'for-bad.age')
  await through([await createEncryptor([alice.recipient])], plain, enc)
  const err = await failureOf([await createDecryptor(bad)], enc)
  t.equal(err.code, 'CONFIG_INVALID')
  t.match(err.message, `the age identity file ${bad} cannot be used: error at line 1`)
  t.notMatch(err.message, 'NOTAREALKEY')
  const missing = await failureOf([await createDecryptor(join(dir, 'nowhere.txt'))], enc)
  t.equal(missing.code, 'CONFIG_INVALID')
})

t.test('the identity reaches age as a path only: its key is in neither argv nor the environment', async t => {
  const decryptor = await createDecryptor(alice.identity)
  // age waits for its input, so it is alive to be looked at
  const argv = readFileSync(`/proc/${decryptor.pid}/cmdline`, 'utf8').split('\0')
  const environ = readFileSync(`/proc/${decryptor.pid}/environ`, 'utf8')
  t.ok(argv.includes(alice.identity), 'the path is passed')
  t.notOk(argv.some(a => a.includes('AGE-SECRET-KEY')), 'no key on argv')
  t.notOk(environ.includes('AGE-SECRET-KEY'), 'no key in the environment')
  const encryptor = await createEncryptor([alice.recipient])
  // neither sits in a pipeline, so their failure on the kill below needs a listener of its own
  decryptor.stream.on('error', () => {})
  encryptor.stream.on('error', () => {})
  t.notOk(readFileSync(`/proc/${encryptor.pid}/cmdline`, 'utf8').includes('AGE-SECRET-KEY'), 'the encryptor sees public keys only')
  decryptor.kill()
  encryptor.kill()
  await Promise.all([decryptor.failure!(), encryptor.failure!()])
})

t.test('killing the encryptor mid-stream fails the pipeline instead of hanging it', async t => {
  const encryptor = await createEncryptor([alice.recipient])
  let killed = false
  // an endless source: only the kill can end this pipeline
  const endless = new Readable({ read () { this.push(plain) } })
  const out = createWriteStream(join(dir, 'killed.age'))
  encryptor.stream.once('data', () => { killed = true; encryptor.kill() })
  const err = await pipeline(endless, encryptor.stream, out).then(() => undefined, (e: unknown) => e as { message: string })
  t.ok(killed, 'the stage was killed while data flowed')
  t.ok(err, 'the pipeline failed')
  const why = await encryptor.failure!()
  t.match(why?.message, /^the encryptor age \(pid \d+\) was killed by SIGTERM/)
})

t.test('age-keygen -y names an identity\'s public keys; a mismatch with the recipients is a warning', async t => {
  const both = join(dir, 'both.txt')
  writeFileSync(both, readFileSync(alice.identity, 'utf8') + readFileSync(bob.identity, 'utf8'), { mode: 0o600 })
  t.same(await identityPublicKeys(both), [alice.recipient, bob.recipient])
  t.equal(await identityMismatch(alice.identity, [alice.recipient, bob.recipient]), undefined)
  t.equal(await identityMismatch(both, [bob.recipient]), undefined)
  t.equal(await identityMismatch(alice.identity, []), undefined, 'nothing encrypted now: nothing to match')
  const warning = await identityMismatch(mallory.identity, [alice.recipient])
  t.match(warning, `is for ${mallory.recipient}, which is not among the configured recipients`)
  t.notMatch(warning, mallory.secret)
  await t.rejects(identityPublicKeys(join(dir, 'nowhere.txt')), { code: 'CONFIG_INVALID' })
})
