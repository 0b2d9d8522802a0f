import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { ErrorCode } from '../../schemas/errors.ts'
import type { ErrorReply } from '../../schemas/errors.ts'
import { describeSchemaErrors, type SchemaError } from '../config-problems.ts'
import { isPgkeepError } from '../errors.ts'

/** The one table from engine error codes to HTTP statuses. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  CONFLICT: 409,
  TARGET_NOT_EMPTY: 409,
  CANCELLED: 409,
  INTERRUPTED: 409,
  INTEGRITY_FAILED: 409,
  LOCK_TIMEOUT: 409,
  TIMEOUT: 504,
  PG_VERSION_MISMATCH: 409,
  QUEUE_FULL: 429,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  CONFIG_INVALID: 500,
  PG_DUMP_FAILED: 500,
  PG_RESTORE_FAILED: 500,
  PG_AUTH_FAILED: 502,
  PG_CONNECTION_FAILED: 503,
  TOOL_MISSING: 503,
  STORAGE_AUTH_FAILED: 502,
  STORAGE_NOT_FOUND: 502,
  STORAGE_UNAVAILABLE: 503,
  DISK_FULL: 507,
}

/** For fastify's own 4xx errors (bad JSON, wrong content type, too large, unknown route). */
const CODE_FOR_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_INPUT', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'INVALID_INPUT',
  406: 'INVALID_INPUT', 409: 'CONFLICT', 411: 'INVALID_INPUT', 413: 'INVALID_INPUT', 415: 'INVALID_INPUT',
  416: 'INVALID_INPUT', 429: 'RATE_LIMITED',
}

export function errorReply (statusCode: number, code: string, message: string): ErrorReply {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

interface ValidationIssue { keyword?: string, instancePath?: string, message?: string, params?: Record<string, unknown> }

const listOf = (v: unknown): string[] => Array.isArray(v) ? v.map(String) : (typeof v === 'string' ? [v] : [])

/**
 * Names the offending field and says what is wrong in the words the config file's errors use:
 * `body.level: must be at most 19`, `body: unknown field "foo"`, `body.format: must be one of "custom", ...`.
 */
function validationMessage (err: FastifyError): string {
  const issues = ((err.validation ?? []) as ValidationIssue[]).map((i): SchemaError => {
    const params = { ...i.params }
    // the same findings under either validator's parameter names
    if (params.additionalProperty !== undefined) params.additionalProperties = listOf(params.additionalProperty)
    if (params.missingProperty !== undefined) params.requiredProperties = listOf(params.missingProperty)
    return { keyword: i.keyword ?? '', instancePath: i.instancePath ?? '', params, message: i.message ?? 'is invalid' }
  })
  const where = err.validationContext ?? 'request'
  const { field, why } = describeSchemaErrors(issues)
  return `${field ? `${where}.${field}` : where}: ${why}`
}

/** Maps anything thrown to {statusCode, code, error, message}; never a stack, never an internal message on 5xx. */
export function toErrorReply (err: unknown): ErrorReply {
  if (isPgkeepError(err)) {
    const status = HTTP_STATUS[err.code] ?? 500
    const message = err.code === 'INTERNAL' ? 'internal error; see the server log' : err.message
    return errorReply(status, err.code, message)
  }
  const fe = err as FastifyError
  if (fe?.validation) return errorReply(400, 'INVALID_INPUT', validationMessage(fe))
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500
  if (status >= 400 && status < 500) {
    const code = (typeof fe.code === 'string' && (HTTP_STATUS as Record<string, number>)[fe.code] === status) ? fe.code : (CODE_FOR_STATUS[status] ?? 'INVALID_INPUT')
    return errorReply(status, code, fe.message || STATUS_CODES[status] || 'bad request')
  }
  return errorReply(500, 'INTERNAL', 'internal error; see the server log')
}

export function errorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const body = toErrorReply(err)
  if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
  else request.log.info({ code: body.code, statusCode: body.statusCode }, body.message)
  void reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}
