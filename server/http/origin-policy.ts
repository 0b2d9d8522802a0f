import type { HttpConfig } from '../config.ts'

/** Names a loopback-bound server answers to: what a local browser or script puts in Host. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]']

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)

export interface OriginPolicy {
  /** Host names (no port) accepted in Host; undefined = any (non-loopback bind, no list configured) */
  hosts?: Set<string>
  /** origins besides the request's own allowed to make cookie-authenticated changes */
  origins: Set<string>
}

/**
 * Which Host and Origin values this server accepts, from where it listens and the configured lists. Bound to
 * loopback, only loopback names (+ the list): a DNS-rebinding page reaches us under its own name and is turned
 * away. Bound elsewhere, the names people use cannot be guessed: the list when given, otherwise any Host.
 */
export function originPolicy (bindHost: string, http: Pick<HttpConfig, 'allowedHosts' | 'allowedOrigins'>): OriginPolicy {
  const listed = http.allowedHosts
  let hosts: Set<string> | undefined
  if (isLoopback(bindHost)) hosts = new Set([...LOOPBACK_NAMES, ...listed])
  else if (listed.length > 0) hosts = new Set([...LOOPBACK_NAMES, ...listed, ...(bindHost === '0.0.0.0' || bindHost === '::' ? [] : [bindHost])])
  return { hosts, origins: new Set(http.allowedOrigins) }
}

/** The host name of a Host header value, lower case, without port; undefined when it is not one. */
export function hostNameOf (host: string): string | undefined {
  if (/[/@?#\\\s]/.test(host)) return undefined
  try {
    return new URL(`http://${host}`).hostname
  } catch {
    return undefined
  }
}

/** Whether a request that came in under `host` over `protocol` may act for a page of `origin`. */
export function originAllowed (policy: OriginPolicy, origin: string, protocol: string, host: string): boolean {
  let own: string
  let theirs: string
  try {
    own = new URL(`${protocol}://${host}`).origin
    theirs = new URL(origin).origin
  } catch {
    return false
  }
  // "null" (sandboxed frames, some redirects) parses to the opaque origin "null": never ours
  return theirs !== 'null' && (theirs === own || policy.origins.has(theirs))
}
