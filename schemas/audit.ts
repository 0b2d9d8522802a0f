import { Type, type Static } from 'typebox'
import { Role } from './auth.ts'

export const AuditOutcome = Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('failed')])
export type AuditOutcome = Static<typeof AuditOutcome>

/** One line of <backupDir>/.pgkeep/audit.jsonl. */
export const AuditEntry = Type.Object({
  time: Type.String({ format: 'date-time' }),
  /** username, `token:<name>` for API tokens, or the attempted name for a failed login */
  user: Type.String(),
  role: Type.Optional(Role),
  ip: Type.String(),
  /** e.g. login, logout, backup.create, backup.download, user.add, token.revoke */
  action: Type.String(),
  backupId: Type.Optional(Type.String()),
  /** the user or token acted upon (user.*, token.*); for backup.restore the database written and how */
  subject: Type.Optional(Type.String()),
  outcome: AuditOutcome,
  /** error code when the outcome is not ok */
  code: Type.Optional(Type.String()),
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
