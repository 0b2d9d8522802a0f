import type { ErrorCode } from '../schemas/errors.ts'

/** Every error the engine throws on purpose: a stable code and a message that tells the user what to do. */
export class PgkeepError extends Error {
  readonly code: ErrorCode
  /** Extra facts for adapters (e.g. which field was wrong); never secrets. */
  readonly details?: Record<string, unknown>

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PgkeepError'
    this.code = code
    this.details = options?.details
  }
}

export class InvalidInputError extends PgkeepError {
  constructor (message: string, field?: string) {
    super('INVALID_INPUT', message, field === undefined ? undefined : { details: { field } })
  }
}

export class NotFoundError extends PgkeepError {
  constructor (what: string) { super('NOT_FOUND', `${what} not found`) }
}

export class InvalidStateError extends PgkeepError {
  constructor (message: string) { super('INVALID_STATE', message) }
}

export class IntegrityError extends PgkeepError {
  constructor (message: string) { super('INTEGRITY_FAILED', message) }
}

export function isPgkeepError (err: unknown): err is PgkeepError {
  return err instanceof PgkeepError
}

/** Wraps anything thrown into a PgkeepError, keeping known codes and hiding internals behind INTERNAL. */
export function toPgkeepError (err: unknown): PgkeepError {
  if (err instanceof PgkeepError) return err
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return new PgkeepError('DISK_FULL', 'no space left on the backups volume', { cause: err })
  return new PgkeepError('INTERNAL', e?.message ?? String(err), { cause: err })
}
