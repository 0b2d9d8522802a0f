import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface AgeKey {
  /** the identity file age-keygen wrote (0600): what PGKEEP_AGE_IDENTITY_FILE names */
  identity: string
  /** its public key, age1...: what PGKEEP_AGE_RECIPIENTS lists */
  recipient: string
  /** the private key itself, for tests that check it never leaks */
  secret: string
}

/** A fresh key pair from the stock age-keygen, its identity file at `<dir>/<name>.txt`. */
export function newAgeKey (dir: string, name: string): AgeKey {
  const identity = join(dir, `${name}.txt`)
  execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' })
  const secret = /AGE-SECRET-KEY-1\S+/.exec(readFileSync(identity, 'utf8'))![0]
  return { identity, recipient: execFileSync('age-keygen', ['-y', identity], { encoding: 'utf8' }).trim(), secret }
}
