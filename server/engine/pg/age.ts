import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { PgkeepError } from '../../errors.ts'
import { childEnv, describeExit } from './child-process.ts'
import { childChain } from './child-chain.ts'
import { childStage, type ChildExit, type ChildStageSpec, type CodecStage } from './child-stage.ts'
import { zstdSpec } from './codec.ts'
import { findAge } from './tools.ts'

/**
 * Encryption at rest in the age format (age-encryption.org/v1), by the Debian `age` CLI run as a child like
 * zstd: a stored backup then opens with stock tools alone (`age -d -i key.txt F | zstd -dc | pg_restore`).
 * Recipients (public keys) go on argv, which is fine for public keys; the identity (private key) is only ever
 * named by its path, so its contents reach no argv, environment, log or error message.
 */

const run = promisify(execFile)

/** age never prints a key, but a message that somehow carried one must not reach a log. */
const SECRET_KEY = /AGE-SECRET-KEY-1[0-9A-Za-z]+/g

/** age's own reason, from its last "age: error: ..." line (the line after it only asks for bug reports). */
function ageReason (stderr: string): string {
  const lines = stderr.split('\n').map(l => l.trim()).filter(Boolean)
  const error = lines.filter(l => /^age(-keygen)?: error: /.test(l)).at(-1) ?? lines.at(-1) ?? ''
  return error.replace(/^age(-keygen)?: error: /, '').replace(SECRET_KEY, 'AGE-SECRET-KEY-1…')
}

export async function encryptSpec (recipients: readonly string[]): Promise<ChildStageSpec> {
  if (recipients.length === 0) throw new PgkeepError('INTERNAL', 'encryption needs at least one age recipient')
  return {
    program: 'age',
    path: await findAge(),
    // binary output (no -a): armor would cost a third more bytes for nothing a pipe needs
    args: ['-e', ...recipients.flatMap(r => ['-r', r])],
    env: childEnv(),
    describeFailure: ({ pid, code, signal, stderr }) => {
      const why = ageReason(stderr)
      return new PgkeepError('INTERNAL', `the encryptor age (pid ${pid}) ${describeExit(code, signal)}${why ? `: ${why}` : ''}`,
        { details: { process: 'age', pid, exitCode: code, signal } })
    },
  }
}

/** Encrypts to every recipient: any one of their identities decrypts (key rotation keeps the old key listed). */
export async function createEncryptor (recipients: readonly string[]): Promise<CodecStage> {
  return childStage(await encryptSpec(recipients))
}

/**
 * zstd then age as one stage, zstd's output reaching age over a kernel pipe rather than through node: the
 * cheaper way to compress and encrypt (bench/encryption.ts). The stored bytes are the same as with
 * createCompressor('zstd') followed by createEncryptor.
 */
export async function createZstdEncryptor (level: number, recipients: readonly string[]): Promise<CodecStage> {
  return childChain([await zstdSpec('compress', level), await encryptSpec(recipients)])
}

/** Why a decryption failed, in words that say whose problem it is: the key's, the file's, or ours. */
export function describeDecryptFailure (exit: ChildExit, identityFile: string): PgkeepError {
  const { pid, code, signal } = exit
  const details = { process: 'age', pid, exitCode: code, signal }
  const why = ageReason(exit.stderr)
  if (signal) return new PgkeepError('INTERNAL', `the decryptor age (pid ${pid}) ${describeExit(code, signal)}`, { details })
  if (/no identity matched any of the recipients/.test(why)) {
    // the file is fine: it was made for other keys, so this is no integrity failure of the backup
    return new PgkeepError('CONFIG_INVALID',
      `none of the configured identities can decrypt this backup: it was encrypted to other recipients; PGKEEP_AGE_IDENTITY_FILE (${identityFile}) must hold the private key of one of them`,
      { details: { ...details, reason: 'NO_MATCHING_IDENTITY' } })
  }
  if (/^reading "/.test(why)) {
    // age names the file and the line, never its contents
    const problem = /error at line .*$/.exec(why)?.[0] ?? why.replace(/^reading "[^"]*": /, '')
    return new PgkeepError('CONFIG_INVALID', `the age identity file ${identityFile} cannot be used: ${problem}`,
      { details: { ...details, reason: 'IDENTITY_UNUSABLE' } })
  }
  if (/intro/.test(why)) {
    return new PgkeepError('INTEGRITY_FAILED', `the stored file is not age-encrypted (its age header is missing or damaged): age: ${why}`, { details })
  }
  if (/header|payload|chunk|nonce|EOF|trailing data|MAC/i.test(why)) {
    return new PgkeepError('INTEGRITY_FAILED', `the encrypted backup is damaged or truncated: age: ${why}`, { details })
  }
  return new PgkeepError('INTERNAL', `the decryptor age (pid ${pid}) ${describeExit(code, signal)}${why ? `: ${why}` : ''}`, { details })
}

/**
 * Decrypts with the identities in `identityFile` (age's -i: one or more AGE-SECRET-KEY-1 lines, # comments).
 * Every byte it passes on has been authenticated; a damaged or truncated file fails the stream with
 * INTEGRITY_FAILED, a file made for other keys with CONFIG_INVALID.
 */
export async function createDecryptor (identityFile: string): Promise<CodecStage> {
  return childStage(await decryptSpec(identityFile))
}

export async function decryptSpec (identityFile: string): Promise<ChildStageSpec> {
  return {
    program: 'age',
    path: await findAge(),
    args: ['-d', '-i', identityFile],
    env: childEnv(),
    describeFailure: exit => describeDecryptFailure(exit, identityFile),
  }
}

/** age -d then zstd -d as one stage over a kernel pipe; a damaged file is reported as age's failure, the cause. */
export async function createZstdDecryptor (identityFile: string): Promise<CodecStage> {
  return childChain([await decryptSpec(identityFile), await zstdSpec('decompress')])
}

/** The public keys (age1...) of the identities in an identity file, as age-keygen -y derives them. */
export async function identityPublicKeys (identityFile: string): Promise<string[]> {
  const keygen = await findAge('age-keygen')
  try {
    const { stdout } = await run(keygen, ['-y', identityFile], { env: childEnv(), timeout: 10_000 })
    return stdout.split('\n').map(l => l.trim()).filter(Boolean)
  } catch (err) {
    const why = ageReason((err as { stderr?: string }).stderr ?? '') || (err as Error).message
    throw new PgkeepError('CONFIG_INVALID', `the age identity file ${identityFile} cannot be used: ${why}`)
  }
}

/**
 * A warning when the identity file can decrypt none of what is encrypted now: not a refusal, since after a key
 * rotation the old identity is the one still needed for old backups. undefined when it matches a recipient
 * (or when nothing is encrypted now).
 */
export async function identityMismatch (identityFile: string, recipients: readonly string[]): Promise<string | undefined> {
  if (recipients.length === 0) return undefined
  const keys = await identityPublicKeys(identityFile)
  if (keys.some(k => recipients.includes(k))) return undefined
  return `the age identity file ${identityFile} is for ${keys.join(', ') || 'no key'}, which is not among the configured recipients: ` +
    'new backups will not decrypt with it (fine while it is kept only for backups made before a key rotation)'
}
