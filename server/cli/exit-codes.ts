import type { ErrorCode } from '../../schemas/errors.ts'
import { EXIT_CANCELLED } from '../exit-status.ts'

/** DESIGN.md: 0 ok, 1 operation failed, 2 usage error, 3 integrity check failed, 130 cancelled. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INTEGRITY: 3, CANCELLED: EXIT_CANCELLED } as const

/** The one table from engine/API error codes to exit codes; anything not listed is an operation failure. */
const EXIT_BY_CODE: Record<ErrorCode, number> = {
  PG_CONNECTION_FAILED: EXIT.FAILED,
  PG_AUTH_FAILED: EXIT.FAILED,
  PG_VERSION_MISMATCH: EXIT.FAILED,
  PG_DUMP_FAILED: EXIT.FAILED,
  PG_RESTORE_FAILED: EXIT.FAILED,
  LOCK_TIMEOUT: EXIT.FAILED,
  TIMEOUT: EXIT.FAILED,
  DISK_FULL: EXIT.FAILED,
  CANCELLED: EXIT.CANCELLED,
  INTERRUPTED: EXIT.FAILED,
  INTEGRITY_FAILED: EXIT.INTEGRITY,
  NOT_FOUND: EXIT.FAILED,
  INVALID_INPUT: EXIT.USAGE,
  INVALID_STATE: EXIT.FAILED,
  CONFLICT: EXIT.FAILED,
  // a refusal the caller settles by choosing clean or merge: like a usage error
  TARGET_NOT_EMPTY: EXIT.USAGE,
  QUEUE_FULL: EXIT.FAILED,
  UNAUTHORIZED: EXIT.FAILED,
  FORBIDDEN: EXIT.FAILED,
  RATE_LIMITED: EXIT.FAILED,
  CONFIG_INVALID: EXIT.USAGE,
  TOOL_MISSING: EXIT.FAILED,
  STORAGE_AUTH_FAILED: EXIT.FAILED,
  STORAGE_NOT_FOUND: EXIT.FAILED,
  STORAGE_UNAVAILABLE: EXIT.FAILED,
  INTERNAL: EXIT.FAILED,
}

export function exitCodeFor (code: string): number {
  return (EXIT_BY_CODE as Record<string, number>)[code] ?? EXIT.FAILED
}

/**
 * For a job the engine accepted and that then ended badly (its record's error code): the request was valid,
 * so even a code that means bad input when refused up front (a target gone from the config) is the
 * operation's failure here, never a usage error.
 */
export function exitCodeForFailedJob (code: string): number {
  const exit = exitCodeFor(code)
  return exit === EXIT.USAGE ? EXIT.FAILED : exit
}
