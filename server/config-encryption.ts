import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ConfigFile } from '../schemas/config.ts'
import { PgkeepError } from './errors.ts'

/** Encryption at rest (age): who new backups are encrypted to, and the private key that reads them back. */
export interface EncryptionConfig {
  /**
   * age X25519 public keys (age1...) every new backup is encrypted to; empty when new backups are not
   * encrypted but an identity is kept to read older encrypted ones.
   */
  recipients: string[]
  /** path of an age identity file (private keys); needed only to restore, download decrypted or fully validate */
  identityFile?: string
}

function fail (name: string, why: string): never {
  throw new PgkeepError('CONFIG_INVALID', `invalid configuration: ${name}: ${why}`)
}

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'

/** BIP-173 checksum over the human-readable part and the data, which must come to 1 for a valid string. */
function bech32Polymod (values: number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
  let chk = 1
  for (const v of values) {
    const top = chk >>> 25
    chk = ((chk & 0x1ffffff) << 5) ^ v
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i]
  }
  return chk
}

/** age1 + 58 bech32 characters (32 key bytes + checksum), the form age-keygen prints; age 1.1 rejects anything else. */
export function isAgeRecipient (text: string): boolean {
  if (!/^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/.test(text)) return false
  const hrp = [...'age'].map(c => c.charCodeAt(0))
  const data = [...text.slice(4)].map(c => BECH32_CHARSET.indexOf(c))
  return bech32Polymod([...hrp.map(c => c >> 5), 0, ...hrp.map(c => c & 31), ...data]) === 1
}

/**
 * One recipient as the admin wrote it, checked. The value is echoed only when it looks like a public key:
 * anything else might be a private key pasted in the wrong place, and that must not reach a log.
 */
function recipient (name: string, where: string, text: string): string {
  if (isAgeRecipient(text)) return text
  if (/^AGE-SECRET-KEY-1/i.test(text)) {
    fail(name, `${where} is a private key (AGE-SECRET-KEY-1...), not a public key: give the age1... line that age-keygen -y prints, and keep the private key off this host`)
  }
  if (/^age1[0-9a-z]*$/i.test(text)) fail(name, `${where} "${text}" is not a valid age public key (age1 followed by 58 characters, as age-keygen prints it)`)
  if (/^ssh-/.test(text)) fail(name, `${where} is an SSH key; pgkeep takes only native age keys (age1..., from age-keygen)`)
  fail(name, `${where} is not an age public key (age1 followed by 58 characters, as age-keygen prints it)`)
}

/** A recipients file as age -R reads it: one recipient per line, blank lines and # comments ignored. */
function recipientsFromFile (field: string, path: string): string[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    fail(field, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  const found = text.split('\n').flatMap((line, i) => {
    const entry = line.trim()
    return entry === '' || entry.startsWith('#') ? [] : [recipient(field, `${path} line ${i + 1}`, entry)]
  })
  if (found.length === 0) fail(field, `${path} holds no recipients (one age1... public key per line)`)
  return found
}

/**
 * The identity file must exist and be private to pgkeep's user, as ssh demands of a private key: a key that
 * others on the host can read is a leaked key, better refused at start-up than discovered later.
 */
function identityFile (field: string, path: string): string {
  let mode: number
  try {
    const st = statSync(path)
    if (!st.isFile()) fail(field, `${path} is not a file`)
    mode = st.mode
  } catch (err) {
    if (err instanceof PgkeepError) throw err
    fail(field, `${path} does not exist or cannot be reached (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if ((mode & 0o077) !== 0) {
    fail(field, `${path} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); a private key must be readable by its owner only: chmod 600 ${path}`)
  }
  try {
    accessSync(path, constants.R_OK)
  } catch {
    fail(field, `${path} cannot be read by this user`)
  }
  return path
}

/**
 * PGKEEP_AGE_RECIPIENTS (comma-separated) and PGKEEP_AGE_IDENTITY_FILE win over the config file's `encryption`
 * block, like every other variable; paths in the file are relative to it. undefined when neither recipients
 * nor an identity is configured.
 */
export function encryptionConfig (env: NodeJS.ProcessEnv, file: ConfigFile, fileDir: string): EncryptionConfig | undefined {
  const block = file.encryption ?? {}
  let recipients: string[]
  const fromEnv = env.PGKEEP_AGE_RECIPIENTS?.trim()
  if (fromEnv) {
    recipients = fromEnv.split(',').map(s => s.trim()).filter(Boolean)
      .map((r, i) => recipient('PGKEEP_AGE_RECIPIENTS', `entry ${i + 1}`, r))
  } else {
    recipients = (block.recipients ?? []).map((r, i) => recipient(`encryption.recipients[${i}]`, 'the entry', r.trim()))
    if (block.recipientsFile !== undefined) recipients.push(...recipientsFromFile('encryption.recipientsFile', resolve(fileDir, block.recipientsFile)))
  }
  const identity = env.PGKEEP_AGE_IDENTITY_FILE
    ? identityFile('PGKEEP_AGE_IDENTITY_FILE', resolve(env.PGKEEP_AGE_IDENTITY_FILE))
    : block.identityFile === undefined ? undefined : identityFile('encryption.identityFile', resolve(fileDir, block.identityFile))
  if (recipients.length === 0 && identity === undefined) return undefined
  return { recipients: [...new Set(recipients)], identityFile: identity }
}
