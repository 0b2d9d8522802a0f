import { Type, type Static } from 'typebox'

/** Stable error codes: the HTTP layer and the CLI each map them to a status / exit code in one table. */
export const ERROR_CODES = [
  'PG_CONNECTION_FAILED', 'PG_AUTH_FAILED', 'PG_VERSION_MISMATCH', 'PG_DUMP_FAILED', 'PG_RESTORE_FAILED', 'LOCK_TIMEOUT', 'TIMEOUT',
  'DISK_FULL', 'CANCELLED', 'INTERRUPTED', 'INTEGRITY_FAILED', 'NOT_FOUND', 'INVALID_INPUT',
  'INVALID_STATE', 'CONFLICT', 'TARGET_NOT_EMPTY', 'QUEUE_FULL', 'UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED',
  'CONFIG_INVALID', 'TOOL_MISSING', 'STORAGE_AUTH_FAILED', 'STORAGE_NOT_FOUND', 'STORAGE_UNAVAILABLE', 'INTERNAL',
] as const
export type ErrorCode = typeof ERROR_CODES[number]

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
})
export type ErrorReply = Static<typeof ErrorReply>
