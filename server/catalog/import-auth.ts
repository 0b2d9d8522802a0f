import { createHash } from 'node:crypto'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AuditLog } from '../audit/audit-log.ts'
import { readJson } from '../auth/secure-file.ts'
import { TokenStore, type TokensFile } from '../auth/token-store.ts'
import { UsersStore, type UsersFile } from '../auth/users-store.ts'
import { PgkeepError } from '../errors.ts'
import { ScheduleStore, type ScheduleState, type StoredSchedule } from '../schedules/schedule-store.ts'
import type { CatalogDb, Queryable } from './catalog-db.ts'
import type { CatalogImporter, ImportResult } from './importer.ts'

// `pgkeep catalog import`, the part that moves users, tokens (with logged-out sessions), the audit log and
// schedules (with their run state) from the files in <backupDir>/.pgkeep into the shared catalog. Each importer
// is one transaction, adds only what the catalog does not have yet (a second run imports nothing), and with
// dryRun counts the same and rolls back. Sessions and tokens issued before the move stay valid: users keep their
// session stamps, tokens their ids (the JWT secret must stay the same).


// an audit log of any length goes in a few statements
const AUDIT_BATCH = 1000

/** Carries a dry run's count out of the transaction it rolls back. */
class DryRunDone extends PgkeepError {
  constructor (readonly count: ImportResult) { super('INVALID_STATE', 'dry run: rolled back') }
}

async function importing (db: CatalogDb, dryRun: boolean, fn: (client: Queryable) => Promise<ImportResult>): Promise<ImportResult> {
  try {
    return await db.transaction(async client => {
      const count = await fn(client)
      if (dryRun) throw new DryRunDone(count)
      return count
    })
  } catch (err) {
    if (err instanceof DryRunDone) return err.count
    throw err
  }
}

const tally = (results: boolean[]): ImportResult => ({ imported: results.filter(Boolean).length, skipped: results.filter(r => !r).length })

export async function importUsers (backupDir: string, db: CatalogDb, dryRun: boolean): Promise<ImportResult> {
  const file = await readJson<UsersFile>(new UsersStore(backupDir).path)
  return await importing(db, dryRun, async client => {
    const added: boolean[] = []
    for (const u of file?.users ?? []) {
      // the stamp the file store gives a user without an id, so that user's sessions survive the move too
      const { rowCount } = await client.query(`INSERT INTO pgkeep.users (username, role, password_hash, stamp_id, generation, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING`,
      [u.username, u.role, u.passwordHash, u.id ?? `legacy-${u.createdAt}`, u.generation ?? 0, u.createdAt, u.updatedAt])
      added.push(rowCount === 1)
    }
    return tally(added)
  })
}

/** API tokens, and the logged-out sessions that have not expired yet. */
export async function importTokens (backupDir: string, db: CatalogDb, dryRun: boolean): Promise<ImportResult> {
  const file = await readJson<TokensFile>(new TokenStore(backupDir).path)
  return await importing(db, dryRun, async client => {
    const added: boolean[] = []
    for (const t of file?.tokens ?? []) {
      // any conflict skips: the same id, or a live token of that name created on the catalog meanwhile
      const { rowCount } = await client.query(`INSERT INTO pgkeep.tokens (id, name, role, created_at, created_by, expires_at, revoked_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      [t.id, t.name, t.role, t.createdAt, t.createdBy, t.expiresAt ?? null, t.revokedAt ?? null])
      added.push(rowCount === 1)
    }
    const nowSec = Date.now() / 1000
    for (const s of file?.revokedSessions ?? []) {
      if (s.exp <= nowSec) { added.push(false); continue }
      const { rowCount } = await client.query(`INSERT INTO pgkeep.revoked_sessions (jti, expires_at) VALUES ($1, pg_catalog.to_timestamp($2))
        ON CONFLICT (jti) DO NOTHING`, [s.jti, s.exp])
      added.push(rowCount === 1)
    }
    return tally(added)
  })
}

/**
 * The audit lines, oldest first, after what the catalog has: import before the instances start writing, or the
 * file's entries come after theirs. Each line is known by its number and hash, so a second run adds nothing and a
 * log appended to since adds only the new lines. A torn or unreadable line is skipped.
 */
export async function importAudit (backupDir: string, db: CatalogDb, dryRun: boolean): Promise<ImportResult> {
  let raw = ''
  try {
    raw = await readFile(new AuditLog(backupDir).path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const rows: { at: string, entry: string, key: string }[] = []
  let unreadable = 0
  raw.split('\n').forEach((line, i) => {
    if (!line) return
    try {
      const entry = JSON.parse(line) as { time?: unknown }
      if (typeof entry.time !== 'string' || Number.isNaN(Date.parse(entry.time))) throw new Error('no time')
      rows.push({ at: entry.time, entry: line, key: `audit.jsonl:${i + 1}:${createHash('sha256').update(line).digest('hex')}` })
    } catch {
      unreadable++
    }
  })
  return await importing(db, dryRun, async client => {
    let imported = 0
    for (let i = 0; i < rows.length; i += AUDIT_BATCH) {
      const batch = rows.slice(i, i + AUDIT_BATCH)
      const { rowCount } = await client.query(`INSERT INTO pgkeep.audit (at, entry, import_key)
        SELECT at, entry, key FROM unnest($1::timestamptz[], $2::jsonb[], $3::text[]) WITH ORDINALITY AS l(at, entry, key, n) ORDER BY n
        ON CONFLICT (import_key) DO NOTHING`, [batch.map(r => r.at), batch.map(r => r.entry), batch.map(r => r.key)])
      imported += rowCount ?? 0
    }
    return { imported, skipped: rows.length - imported + unreadable }
  })
}

/** Schedules created over the API and the run state of every schedule (config ones too: their missed runs). */
export async function importSchedules (backupDir: string, db: CatalogDb, dryRun: boolean): Promise<ImportResult> {
  const path = join(backupDir, '.pgkeep', 'schedules.json')
  try {
    await access(path)
  } catch {
    return { imported: 0, skipped: 0 }
  }
  // opened first for its checks: a file the server would refuse is not imported either
  await ScheduleStore.open(backupDir)
  const file = (await readJson<{ schedules: StoredSchedule[], state: Record<string, ScheduleState> }>(path))!
  return await importing(db, dryRun, async client => {
    const added: boolean[] = []
    for (const s of file.schedules) {
      const { rowCount } = await client.query('INSERT INTO pgkeep.schedules (name, definition) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [s.name, JSON.stringify(s)])
      added.push(rowCount === 1)
    }
    for (const [name, state] of Object.entries(file.state)) {
      const { rowCount } = await client.query('INSERT INTO pgkeep.schedule_state (name, state) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, JSON.stringify(state)])
      added.push(rowCount === 1)
    }
    return tally(added)
  })
}

/** For import.ts's list of importers. */
export const AUTH_IMPORTERS: readonly CatalogImporter[] = [
  { kind: 'users', run: importUsers },
  { kind: 'tokens', run: importTokens },
  { kind: 'audit', run: importAudit },
  { kind: 'schedules', run: importSchedules },
]
