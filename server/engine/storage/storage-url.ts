import { PgkeepError } from '../../errors.ts'

export type StorageLocation = { kind: 'local', dir: string } | { kind: 's3', bucket: string, prefix: string }

// S3's rules for new buckets, loosened to what other stores allow too (dots, and upper case for older buckets).
const BUCKET = /^[a-zA-Z0-9][a-zA-Z0-9.\-_]{1,61}[a-zA-Z0-9]$/

function invalid (url: string, why: string): PgkeepError {
  // a url with user:password@ in it is the one mistake whose message must not repeat it
  const shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1***@')
  return new PgkeepError('CONFIG_INVALID', `storage url ${shown}: ${why}`, { details: { field: 'storage' } })
}

/**
 * `s3://bucket/prefix` or a local directory (a path or a `file://` url). Credentials never belong in it: they
 * come from the AWS SDK's usual chain (environment, profile), so a url can be logged and stored as it is.
 */
export function parseStorageUrl (url: string): StorageLocation {
  if (url.startsWith('file://')) {
    const dir = decodeURIComponent(new URL(url).pathname)
    if (dir === '' || dir === '/') throw invalid(url, 'a file:// url needs a directory')
    return { kind: 'local', dir }
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    if (url.trim() === '') throw invalid(url, 'empty')
    return { kind: 'local', dir: url }
  }
  if (!url.startsWith('s3://')) throw invalid(url, 'only s3:// and file:// urls (or a directory path) are supported')
  const rest = url.slice('s3://'.length)
  if (/[?#]/.test(rest)) throw invalid(url, 'no query or fragment: credentials and options do not go in the url')
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  if (bucket.includes('@') || bucket.includes(':')) throw invalid(url, 'no credentials or port in the url: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL_S3')
  if (bucket === '') throw invalid(url, 'the bucket name is empty')
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw invalid(url, `"${bucket}" is not a valid bucket name (3-63 letters, digits, dots, hyphens)`)
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '')
  const segments = prefix === '' ? [] : prefix.split('/')
  if (segments.some(s => s === '')) throw invalid(url, 'the prefix has an empty path segment (//)')
  if (segments.some(s => s === '.' || s === '..')) throw invalid(url, 'the prefix may not contain . or .. segments')
  if (/[\0-\x1f\\]/.test(prefix)) throw invalid(url, 'the prefix contains control characters or backslashes')
  return { kind: 's3', bucket, prefix }
}

export function s3Url (bucket: string, prefix: string): string {
  return prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`
}
