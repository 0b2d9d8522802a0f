import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createInterface } from 'node:readline'
import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError, PgkeepError } from '../../errors.ts'
import { ChildStoppedReading, feedChild } from '../pg/child-feed.ts'
import { childEnv, spawnChild } from '../pg/child-process.ts'
import type { BackupBytes } from '../storage/backup-bytes.ts'

/**
 * The object types a drill looks for after the restore, as pg_dump names them in its table of contents. Longer
 * names first: "TABLE DATA" and "TABLE ATTACH" must not be read as a TABLE. Types not listed (constraints,
 * comments, ACLs, triggers, ...) are left out: their TOC tags do not name a catalog row one-to-one.
 */
const TOC_TYPES = [
  'MATERIALIZED VIEW DATA', 'TABLE DATA', 'TABLE ATTACH', 'INDEX ATTACH', 'SEQUENCE SET', 'SEQUENCE OWNED BY',
  'MATERIALIZED VIEW', 'FOREIGN TABLE', 'SCHEMA', 'TABLE', 'VIEW', 'SEQUENCE', 'INDEX', 'FUNCTION', 'PROCEDURE',
  'AGGREGATE', 'TYPE', 'DOMAIN', 'EXTENSION',
] as const
export const CHECKED_TYPES = new Set<string>(['MATERIALIZED VIEW', 'FOREIGN TABLE', 'SCHEMA', 'TABLE', 'VIEW', 'SEQUENCE', 'INDEX', 'FUNCTION', 'PROCEDURE', 'AGGREGATE', 'TYPE', 'DOMAIN', 'EXTENSION'])

/**
 * One TOC entry: `TYPE schema name owner` as pg_restore -l prints it (schema `-` for schemas and extensions),
 * without quoting, so a name with spaces cannot be split reliably: the whole text is kept and matched against
 * the catalog's own `TYPE schema name` spellings (objects-check.ts).
 */
export interface TocEntry {
  type: string
  /** `schema name owner` (owner may be empty) */
  rest: string
}

/** pg_restore -l lines: `215; 1259 16392 TABLE public actor postgres` */
export function parseTocLine (line: string): TocEntry | undefined {
  const m = /^\d+; \d+ \d+ (.*)$/.exec(line)
  if (!m) return undefined
  const text = m[1]
  const type = TOC_TYPES.find(t => text.startsWith(`${t} `))
  if (type === undefined) return undefined
  return { type, rest: text.slice(type.length + 1) }
}

/** A plain dump's object header: `-- Name: actor; Type: TABLE; Schema: public; Owner: postgres` */
export function parsePlainHeader (line: string): TocEntry | undefined {
  const m = /^-- (?:Data for )?Name: (.*); Type: ([A-Z ]+); Schema: (.*); Owner: (.*)$/.exec(line)
  if (!m) return undefined
  const type = TOC_TYPES.find(t => t === m[2])
  if (type === undefined) return undefined
  return { type, rest: `${m[3]} ${m[1]} ${m[4]}` }
}

const FORMAT_FLAG = { custom: 'c', tar: 't', directory: 'd' } as const

/** The stored bytes decoded back to what pg_dump wrote (decrypted, decompressed), as one stream. */
async function decoded (bytes: BackupBytes): Promise<{ stream: Readable, done: Promise<void> }> {
  const out = new PassThrough()
  const stages = (await bytes.decoders()).map(d => d.stage)
  const done = (pipeline as (...s: unknown[]) => Promise<void>)(await bytes.open(), ...stages.map(s => s.stream), out)
  return { stream: out, done }
}

/**
 * The archive's table of contents: `pg_restore -l` for custom, tar and directory archives (fed through stdin
 * unless pg_restore can open the file itself), the object headers of a plain SQL dump otherwise.
 */
export async function readArchiveToc (pgRestorePath: string, backup: Backup, bytes: BackupBytes): Promise<TocEntry[]> {
  if (backup.format === 'plain') return await readPlainHeaders(bytes)
  const args = ['-l', '-F', FORMAT_FLAG[backup.format]]
  const direct = backup.format === 'directory' || (bytes.path !== undefined && backup.compression === 'none')
  const child = spawnChild(pgRestorePath, direct ? [...args, bytes.path as string] : args, { env: childEnv(), stdio: [direct ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  const entries: TocEntry[] = []
  const err: string[] = []
  createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', line => { const e = parseTocLine(line); if (e) entries.push(e) })
  createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', line => { if (err.length < 20) err.push(line) })
  const exited = new Promise<number | null>((resolve, reject) => { child.once('error', reject); child.once('close', resolve) })
  let readFailure: unknown
  let fed: Promise<void> = Promise.resolve()
  if (!direct) {
    const stages = (await bytes.decoders()).map(d => d.stage)
    // pg_restore -l stops reading once it has the table of contents: that early stop is expected
    fed = (pipeline as (...s: unknown[]) => Promise<void>)(await bytes.open(), ...stages.map(s => s.stream), feedChild(child.stdin!, { drainAfterClose: false }))
      .catch((e: unknown) => {
        if (!(e instanceof ChildStoppedReading)) { readFailure = e; child.kill('SIGKILL') }
        child.stdin!.destroy()
      })
      .finally(() => { for (const s of stages) s.kill() })
  }
  const [code] = await Promise.all([exited, fed])
  if (code !== 0) {
    if (readFailure !== undefined) throw new IntegrityError(`the backup ${backup.name} could not be read (${(readFailure as Error)?.message ?? String(readFailure)})`)
    throw new PgkeepError('PG_RESTORE_FAILED', `pg_restore -l could not list ${backup.name}: ${err.join(' | ') || `exit code ${code}`}`)
  }
  return entries
}

async function readPlainHeaders (bytes: BackupBytes): Promise<TocEntry[]> {
  const { stream, done } = await decoded(bytes)
  const entries: TocEntry[] = []
  const lines = createInterface({ input: stream, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.startsWith('-- ')) continue
    const e = parsePlainHeader(line)
    if (e) entries.push(e)
  }
  await done
  return entries
}
