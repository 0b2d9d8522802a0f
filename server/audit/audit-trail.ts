import type { Role } from '../../schemas/auth.ts'
import type { AuditDeletion, AuditDoor, AuditEntry } from '../../schemas/audit.ts'
import type { RestoreMode } from '../../schemas/restore.ts'
import { toPgkeepError } from '../errors.ts'

/** An entry as a writer hands it over; the log stamps the time. */
export type AuditRecord = Omit<AuditEntry, 'time'> & { time?: string }

/** What an action adds to its entry: every field but who (user, role, door, ip), the action and how it ended. */
export type AuditFields = Omit<AuditRecord, 'time' | 'user' | 'role' | 'door' | 'ip' | 'action' | 'outcome' | 'code'>

export interface AuditSink {
  append (entry: AuditRecord): Promise<void>
}

/** Who acts through a door other than HTTP (where the request says who): the CLI's OS user, a schedule. */
export interface AuditActor {
  user: string
  door: AuditDoor
  role?: Role
  /** `local` unless given: these doors have no remote address */
  ip?: string
}

/**
 * One actor's entries in the audit log: one entry per state change, written once the change has succeeded or
 * failed (with its error code), so the log says what happened, not what was attempted.
 */
export class AuditTrail {
  constructor (private readonly sink: AuditSink, readonly actor: AuditActor) {}

  async record (action: string, outcome: Pick<AuditEntry, 'outcome' | 'code'>, fields: AuditFields = {}): Promise<void> {
    const { user, door, role, ip = 'local' } = this.actor
    await this.sink.append({ user, ...(role ? { role } : {}), door, ip, action, ...fields, ...outcome })
  }

  /**
   * Runs fn and records its outcome; fields is read after fn has settled (with its result when it succeeded), so
   * it can name what fn found out (the backup it created, those it deleted before it failed). fn's error is
   * rethrown as is.
   */
  async around<T> (action: string, fn: () => Promise<T>, fields: (result?: T) => AuditFields = () => ({}), codeOf: (err: unknown) => string = err => toPgkeepError(err).code): Promise<T> {
    let result: T
    try {
      result = await fn()
    } catch (err) {
      await this.record(action, { outcome: 'failed', code: codeOf(err) }, fields())
      throw err
    }
    await this.record(action, { outcome: 'ok' }, fields(result))
    return result
  }
}

/**
 * A cleanup's deletions, heard one by one (the engine's cleanup onDeleted) so that its audit entry names every
 * backup deleted, also when a later deletion failed. fields() is what the entry adds (nothing when none was).
 */
export class DeletionLog {
  readonly #deleted: AuditDeletion[] = []
  readonly onDeleted = (backup: { id: string, name: string }, reason: string): void => {
    this.#deleted.push({ id: backup.id, name: backup.name, reason: reason || 'retention policy' })
  }

  fields (): Pick<AuditFields, 'deleted'> {
    return this.#deleted.length > 0 ? { deleted: [...this.#deleted] } : {}
  }
}

/** A restore's `subject`: the database it writes and how, from any door. */
export function restoreSubject (target: string, database: string, mode: RestoreMode): string {
  const how = { new: 'created', replace: 'replaced; the existing database is dropped once the restore succeeded', into: 'restored into the existing database' }[mode]
  return `database ${JSON.stringify(database)} on target ${target}: ${how}`
}
