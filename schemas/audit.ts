import { Type, type Static } from 'typebox'
import { Role } from './auth.ts'

export const AuditOutcome = Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('failed')])
export type AuditOutcome = Static<typeof AuditOutcome>

/** How the change came in: the HTTP API (dashboard, scripts), the CLI on the engine itself, or a schedule's timer. */
export const AuditDoor = Type.Union([Type.Literal('http'), Type.Literal('cli'), Type.Literal('schedule')])
export type AuditDoor = Static<typeof AuditDoor>

/** A backup a cleanup deleted, and why no retention rule kept it. */
export const AuditDeletion = Type.Object({ id: Type.String(), name: Type.String(), reason: Type.String() })
export type AuditDeletion = Static<typeof AuditDeletion>

/**
 * One line of <backupDir>/.pgkeep/audit.jsonl (docs/http-api.md, "Audit"). Who: user (+ role, door, ip);
 * what: action, outcome, code; on what: backupId, subject, and the fields of the action. A new detail an action
 * needs is one more optional field here: every door's writer takes every field of this schema.
 */
export const AuditEntry = Type.Object({
  time: Type.String({ format: 'date-time' }),
  /**
   * username, `token:<name>` for API tokens, `cli:<OS user>` for the CLI on the engine itself, `schedule:<name>`
   * for a schedule's runs (`schedule:cleanupCron` for the retention cron), or the attempted name for a failed login
   */
  user: Type.String(),
  role: Type.Optional(Role),
  /** absent on lines written before doors were recorded */
  door: Type.Optional(AuditDoor),
  /** the caller's address; `local` for the CLI and schedules */
  ip: Type.String(),
  /** e.g. login, logout, backup.create, backup.download, backup.cleanup, registry.reindex, schedule.update, user.add */
  action: Type.String(),
  backupId: Type.Optional(Type.String()),
  /** what was acted upon when it is not a backup: the user or token (user.*, token.*), the schedule (schedule.*);
   * for backup.restore the database written and how */
  subject: Type.Optional(Type.String()),
  outcome: AuditOutcome,
  /** error code when the outcome is not ok */
  code: Type.Optional(Type.String()),
  /** backup.cleanup: a dry run (it deleted nothing) */
  dryRun: Type.Optional(Type.Boolean()),
  /** backup.cleanup: every backup it deleted, also when it failed part-way */
  deleted: Type.Optional(Type.Array(AuditDeletion)),
})
export type AuditEntry = Static<typeof AuditEntry>

export const AuditQuery = Type.Object({
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  pageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
}, { additionalProperties: false })
export type AuditQuery = Static<typeof AuditQuery>

export const AuditPage = Type.Object({
  items: Type.Array(AuditEntry),
  total: Type.Integer(),
  page: Type.Integer(),
  pageSize: Type.Integer(),
})
export type AuditPage = Static<typeof AuditPage>
