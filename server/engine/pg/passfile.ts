import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Target } from '../../config.ts'

/** Escapes a .pgpass field: backslash and colon are the only specials. */
function pgpassField (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
}

export interface ChildPgEnv {
  /** environment for pg_dump/pg_restore/psql: PGPASSFILE, PGAPPNAME, LC_MESSAGES=C; no PGPASSWORD ever */
  env: NodeJS.ProcessEnv
  /** connection argv (host, port, user, dbname); never contains the password */
  connArgs: (database?: string) => string[]
  dispose: () => Promise<void>
}

/**
 * Passwords reach child processes only through a per-job 0600 passfile in a private 0700 temp dir,
 * removed when the job ends. argv and the environment never carry them.
 */
export async function prepareChildEnv (target: Target, appName: string, baseEnv: NodeJS.ProcessEnv = process.env): Promise<ChildPgEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeep-pass-'))
  const passfile = join(dir, 'pgpass')
  const line = target.password === undefined
    ? ''
    : `*:*:*:${pgpassField(target.user)}:${pgpassField(target.password)}\n`
  await writeFile(passfile, line, { mode: 0o600 })
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(baseEnv)) {
    // drop the caller's PG* settings so the job's target alone decides where we connect
    if (!k.startsWith('PG') && k !== 'DATABASE_URL' && !k.startsWith('PGKEEP_')) env[k] = v
  }
  Object.assign(env, { PGPASSFILE: passfile, PGAPPNAME: appName, LC_MESSAGES: 'C', LC_ALL: 'C', LANG: 'C' })
  if (target.sslmode) env.PGSSLMODE = target.sslmode
  return {
    env,
    connArgs: (database = target.database) => ['-h', target.host, '-p', String(target.port), '-U', target.user, '-d', database],
    dispose: async () => { await rm(dir, { recursive: true, force: true }) },
  }
}
