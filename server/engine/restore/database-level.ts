import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError, PgkeepError } from '../../errors.ts'
import { ChildStoppedReading, feedChild } from '../pg/child-feed.ts'
import { spawnChild } from '../pg/child-process.ts'
import type { BackupBytes } from '../storage/backup-bytes.ts'
import { firstStageFailure } from '../pg/backup-codec.ts'
import type { CodecStage } from '../pg/codec.ts'

/**
 * The database-level part of an archive: what `pg_restore --create` would run for the database itself
 * (CREATE DATABASE with its encoding and locale, owner, comment, `ALTER DATABASE ... SET`,
 * `ALTER ROLE ... IN DATABASE ... SET`, privileges). pgkeep restores into a scratch database of its own
 * name, so these statements are taken from pg_restore's script and pointed at that name.
 * Plain SQL backups carry none of this (pg_dump writes it into a script only with --create).
 */

/**
 * pg_restore's schema filter (-n) leaves out every object in a schema, while the database's own entries
 * answer only to --create: a schema name no database can have (longer than NAMEDATALEN) selects just them.
 */
export const NO_SCHEMA = 'pgkeep-database-level-entries-only-' + 'x'.repeat(40)

export interface DatabaseLevel {
  /** CREATE DATABASE <name> WITH ..., <name> left for the caller to fill in */
  create: (quotedName: string) => string
  /** owner, comment, settings, privileges: to run (in order) once the database exists */
  statements: (quotedName: string) => string[]
}

const IDENT = String.raw`(?:"(?:[^"]|"")*"|[^\s;"]+)`
const CREATE_RE = new RegExp(String.raw`^CREATE DATABASE (${IDENT}) (WITH [\s\S]*)$`)

/**
 * Statement heads that name the database, each with the dumped name right after the match: the name is
 * replaced only there, never inside a role name or a comment's text.
 */
const HEADS = [
  String.raw`ALTER DATABASE `,
  String.raw`COMMENT ON DATABASE `,
  String.raw`SECURITY LABEL (?:FOR ${IDENT} )?ON DATABASE `,
  String.raw`ALTER ROLE ${IDENT} IN DATABASE `,
  String.raw`(?:GRANT|REVOKE) [A-Za-z, ()]+ ON DATABASE `,
]

/**
 * Splits an SQL script into statements at semicolons outside quotes, dropping comments and psql's
 * backslash commands (\connect, \restrict, \encoding). Enough for pg_dump's own output, which writes
 * strings as '...' with standard_conforming_strings on, or E'...'.
 */
export function splitStatements (script: string): string[] {
  const out: string[] = []
  let cur = ''
  let i = 0
  const atStatementStart = (): boolean => cur.trim() === ''
  while (i < script.length) {
    const c = script[i]
    if (atStatementStart() && c === '\\') { // psql meta-command: up to the end of the line
      const nl = script.indexOf('\n', i)
      i = nl < 0 ? script.length : nl + 1
      continue
    }
    if (c === '-' && script[i + 1] === '-') {
      const nl = script.indexOf('\n', i)
      i = nl < 0 ? script.length : nl + 1
      continue
    }
    if (c === "'" || c === '"') {
      const escapes = c === "'" && /[Ee]$/.test(cur) && !/[A-Za-z0-9_][Ee]$/.test(cur)
      let j = i + 1
      for (; j < script.length; j++) {
        if (escapes && script[j] === '\\') { j++; continue }
        if (script[j] === c) {
          if (script[j + 1] === c) { j++; continue }
          break
        }
      }
      cur += script.slice(i, j + 1)
      i = j + 1
      continue
    }
    if (c === ';') {
      if (cur.trim()) out.push(cur.trim())
      cur = ''
      i++
      continue
    }
    cur += c
    i++
  }
  if (cur.trim()) out.push(cur.trim())
  return out
}

/**
 * The options of a dumped CREATE DATABASE in words an older server accepts: pg_dump writes them for its own
 * version (pg_dump 15 always says LOCALE_PROVIDER, which servers before 15 reject; LOCALE itself arrived in 13).
 * Only spellings change; an ICU database cannot become one on a server without ICU providers, and says so.
 */
export function fitCreateOptions (options: string, serverVersionNum: number): string {
  let out = options
  if (serverVersionNum < 150000) {
    if (/\bLOCALE_PROVIDER\s*=\s*'?icu\b/i.test(out)) {
      throw new PgkeepError('PG_RESTORE_FAILED', `the backup's database uses ICU as its locale provider, which this server (before PostgreSQL 15) cannot create; restore into an existing database (create: false) instead`)
    }
    out = out.replace(/\s*\bLOCALE_PROVIDER\s*=\s*'?\w+'?/gi, '').replace(/\s*\bICU_LOCALE\s*=\s*'(?:[^']|'')*'/gi, '')
  }
  if (serverVersionNum < 160000) out = out.replace(/\s*\bICU_RULES\s*=\s*'(?:[^']|'')*'/gi, '')
  if (serverVersionNum < 130000) out = out.replace(/\bLOCALE\s*=\s*('(?:[^']|'')*')/gi, 'LC_COLLATE = $1 LC_CTYPE = $1')
  return out
}

/**
 * Reads pg_restore's `--create` script of the database-level entries. Undefined when the script has no
 * CREATE DATABASE (nothing to carry over). Session settings (SET, set_config) are pg_restore's own
 * preamble and are left out.
 */
export function parseDatabaseLevel (script: string): DatabaseLevel | undefined {
  const statements = splitStatements(script)
  let dumpedName: string | undefined
  let createRest = ''
  const rest: string[] = []
  for (const s of statements) {
    const m = CREATE_RE.exec(s)
    if (m && dumpedName === undefined) { dumpedName = m[1]; createRest = m[2]; continue }
    if (/^(?:SET |SELECT pg_catalog\.set_config\()/i.test(s) && !/^SET SESSION AUTHORIZATION /i.test(s)) continue
    rest.push(s)
  }
  if (dumpedName === undefined) return undefined
  const name = dumpedName
  const heads = HEADS.map(h => new RegExp(`^(${h})${escapeRegExp(name)}(?=\\s|;|$)`))
  return {
    create: quoted => `CREATE DATABASE ${quoted} ${createRest}`,
    statements: quoted => rest.map(s => {
      for (const re of heads) if (re.test(s)) return s.replace(re, (_all, head: string) => head + quoted)
      return s
    }),
  }
}

function escapeRegExp (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const FORMAT_FLAG = { custom: 'c', tar: 't', directory: 'd' } as const

/**
 * Asks pg_restore for the archive's database-level script (it reads only the archive's table of contents).
 * Undefined for plain SQL backups, which have none. Owner and privileges are left out when the backup was
 * taken without them, as pg_restore leaves them out of the objects.
 */
export async function readDatabaseLevel (pgRestorePath: string, backup: Backup, bytes: BackupBytes, env: NodeJS.ProcessEnv): Promise<DatabaseLevel | undefined> {
  if (backup.format === 'plain') return undefined
  const args = ['--create', '-n', NO_SCHEMA, '-f', '-', '-F', FORMAT_FLAG[backup.format]]
  if (backup.options.noOwner) args.push('--no-owner')
  if (backup.options.noPrivileges) args.push('--no-privileges')
  const viaStdin = backup.format !== 'directory' && (backup.compression !== 'none' || bytes.path === undefined)
  const child = spawnChild(pgRestorePath, viaStdin ? args : [...args, bytes.path as string], { env, stdio: [viaStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (c: Buffer) => out.push(c))
  child.stderr!.on('data', (c: Buffer) => err.push(c))
  const exited = new Promise<number | null>((resolve, reject) => { child.once('error', reject); child.once('close', resolve) })
  let fed: Promise<void> = Promise.resolve()
  let readFailure: unknown
  let decoders: CodecStage[] = []
  if (viaStdin) {
    decoders = (await bytes.decoders()).map(d => d.stage)
    // pg_restore stops reading once it has the table of contents: that early stop is expected here
    fed = (pipeline as (...s: unknown[]) => Promise<void>)(await bytes.open(), ...decoders.map(d => d.stream), feedChild(child.stdin!, { drainAfterClose: false }))
      .catch((e: unknown) => {
        if (!(e instanceof ChildStoppedReading)) { readFailure = e; child.kill('SIGKILL') }
        child.stdin!.destroy()
      })
      .finally(() => { for (const d of decoders) d.kill() })
  }
  const [code] = await Promise.all([exited, fed])
  const cause = code !== 0 ? await firstStageFailure(decoders) : undefined
  if (cause?.code === 'CONFIG_INVALID' || cause?.code === 'INTEGRITY_FAILED') throw cause
  if (code !== 0 && readFailure !== undefined) {
    throw new IntegrityError(`the backup ${backup.name} could not be read to the end (${(readFailure as Error)?.message ?? String(readFailure)}); run validate on it`)
  }
  if (code !== 0) {
    const why = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-2).join(' | ')
    throw new PgkeepError('PG_RESTORE_FAILED', `could not read the database's own settings from ${backup.name}: ${why || `pg_restore exited with ${code}`}`)
  }
  return parseDatabaseLevel(Buffer.concat(out).toString('utf8'))
}
