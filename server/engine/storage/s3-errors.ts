import { PgkeepError } from '../../errors.ts'

/** What the SDK puts on a failed command: a service error (name = S3 code, $metadata) or a Node network error. */
interface SdkError {
  name?: string
  code?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
  $retryable?: unknown
}

const AUTH_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken',
  'TokenRefreshRequired', 'AuthorizationHeaderMalformed', 'CredentialsProviderError', 'InvalidSecurity', 'AccountProblem'])
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
  'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
const TRANSIENT_CODES = new Set(['SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'Throttling',
  'ThrottlingException', 'RequestTimeTooSkewed', 'TimeoutError', 'RequestTimeoutException'])

function s3Code (err: unknown): string | undefined {
  const e = err as SdkError | undefined
  return e?.Code ?? (e?.name !== 'Error' && e?.name !== 'Unknown' ? e?.name : undefined)
}

export function httpStatusOf (err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode
}

function isNetworkError (err: unknown): boolean {
  const e = err as SdkError | undefined
  if (e?.name === 'AbortError') return false
  return (e?.code !== undefined && NETWORK_CODES.has(e.code)) || e?.name === 'TimeoutError' ||
    /socket hang up|ECONNRESET|ECONNREFUSED/i.test(e?.message ?? '')
}

/** Worth sending the same request again: the store or the path to it failed, not the request. */
export function isTransientS3Error (err: unknown): boolean {
  if (err instanceof PgkeepError) return false
  const status = httpStatusOf(err)
  const code = s3Code(err)
  return (status !== undefined && status >= 500) || status === 429 || (code !== undefined && TRANSIENT_CODES.has(code)) || isNetworkError(err)
}

export function isS3NotFound (err: unknown): boolean {
  const code = s3Code(err)
  return code === 'NoSuchKey' || code === 'NotFound' || (httpStatusOf(err) === 404 && code !== 'NoSuchBucket' && code !== 'NoSuchUpload')
}

export function hasS3Code (err: unknown, ...codes: string[]): boolean {
  const code = s3Code(err)
  return code !== undefined && codes.includes(code)
}

/**
 * Turns whatever the SDK threw into a PgkeepError naming the storage url and the S3 code. The SDK's error is
 * deliberately not kept as `cause`: its $response carries the signed request, and causes end up in logs.
 */
export function toStorageError (err: unknown, url: string, doing: string): PgkeepError {
  if (err instanceof PgkeepError) return err
  const status = httpStatusOf(err)
  const code = s3Code(err)
  const details = { s3Code: code, httpStatus: status }
  const what = code ?? (err as SdkError | undefined)?.code ?? (status !== undefined ? `HTTP ${status}` : 'error')
  if (code === 'CredentialsProviderError') {
    return new PgkeepError('STORAGE_AUTH_FAILED', `${url}: no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`, { details })
  }
  if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || status === 403) {
    return new PgkeepError('STORAGE_AUTH_FAILED', `${url}: the store refused pgkeep's credentials while ${doing} (${what})`, { details })
  }
  if (code === 'NoSuchBucket') {
    return new PgkeepError('STORAGE_NOT_FOUND', `${url}: the bucket does not exist (${what})`, { details })
  }
  if (code === 'AbortError') {
    return new PgkeepError('CANCELLED', `${url}: ${doing} was cancelled`, { details })
  }
  if (isTransientS3Error(err)) {
    return new PgkeepError('STORAGE_UNAVAILABLE', `${url}: the store is unavailable while ${doing} (${what})`, { details })
  }
  return new PgkeepError('INTERNAL', `${url}: the store refused ${doing} (${what})`, { details })
}
