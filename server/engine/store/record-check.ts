import { Compile } from 'typebox/compile'
import { Backup } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'

const checkBackup = Compile(Backup)

/**
 * Records known to match the schema: parsed from a checked source or checked before being written. Saves
 * re-checking thousands of unchanged records on every update (records are replaced, never mutated in place).
 */
const validated = new WeakSet<Backup>()

export function isValidBackup (record: unknown): record is Backup {
  if (typeof record === 'object' && record !== null && validated.has(record as Backup)) return true
  if (!checkBackup.Check(record)) return false
  validated.add(record)
  return true
}

/** A record read back from bytes this process itself checked or wrote: no need to check it again. */
export function trustBackup (record: Backup): void {
  validated.add(record)
}

/** The first schema problem of a record, as `/path message`. */
export function firstProblem (record: unknown): string {
  const e = [...checkBackup.Errors(record)][0]
  return `${e?.instancePath || '/'} ${e?.message ?? 'does not match the schema'}`
}

/**
 * Records as they are stored: `{ ...b, error: undefined }` is a natural way to clear a field, stored it is simply
 * absent. A record that does not match the schema is a bug: refused (INTERNAL), nothing written.
 */
export function recordsForWrite (records: Backup[]): Backup[] {
  const backups = records.map(b => Object.values(b).some(v => v === undefined)
    ? Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) as Backup
    : b)
  const bad = backups.find(b => !isValidBackup(b))
  if (bad !== undefined) {
    const e = [...checkBackup.Errors(bad)][0]
    throw new PgkeepError('INTERNAL', `refusing to write an invalid registry record ${(bad as { id?: string }).id ?? '?'}: ${e?.instancePath || '/'} ${e?.message ?? ''}`)
  }
  return backups
}
