import { randomBytes } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config.ts'
import { ensurePrivateDir } from './secure-file.ts'

/**
 * PGKEEP_JWT_SECRET when given; otherwise (the embedded dev default) a random secret generated once and
 * kept 0600 at `<backupDir>/.pgkeep/jwt-secret`, so tokens survive restarts and the CLI signs with the same key.
 */
export async function resolveJwtSecret (config: Pick<Config, 'backupDir' | 'jwtSecret'>): Promise<string> {
  if (config.jwtSecret) return config.jwtSecret
  const dir = join(config.backupDir, '.pgkeep')
  const path = join(dir, 'jwt-secret')
  await ensurePrivateDir(dir)
  try {
    const fh = await open(path, 'wx', 0o600)
    try {
      await fh.writeFile(randomBytes(48).toString('base64url'))
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch (err) {
    // Another process (server and CLI share the dir) created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const secret = (await readFile(path, 'utf8')).trim()
  if (secret.length < 32) throw new Error(`${path} holds a secret shorter than 32 characters; delete it to regenerate`)
  return secret
}
