/** One HTTP request a channel sends: everything but the transport. */
export interface HttpRequest {
  url: string
  headers: Record<string, string>
  body: string
}

/** Why a delivery attempt failed, in words safe to log and show (no URL, no token), and whether asking again may help. */
export class DeliveryError extends Error {
  readonly retryable: boolean
  /** the service asked us to wait this long (Retry-After, Telegram's retry_after) */
  readonly retryAfterMs?: number
  constructor (message: string, retryable: boolean, retryAfterMs?: number) {
    super(message)
    this.retryable = retryable
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs
  }
}

/** How much of a refusal's body is quoted: enough for Slack's `no_service` or Telegram's `chat not found`. */
const ANSWER_CHARS = 200

function retryAfter (res: Response, body: string): number | undefined {
  const header = res.headers.get('retry-after')
  if (header && /^\d+$/.test(header.trim())) return Number(header) * 1000
  // Telegram says it in the body: {"parameters":{"retry_after":5}}; Discord too, in seconds with a fraction
  try {
    const json = JSON.parse(body) as { parameters?: { retry_after?: number }, retry_after?: number }
    const s = json.parameters?.retry_after ?? json.retry_after
    if (typeof s === 'number' && s >= 0) return Math.ceil(s * 1000)
  } catch { /* not JSON */ }
  return undefined
}

/**
 * Posts once. A 2xx is delivered; 408, 429 and 5xx may pass if asked again; any other answer will not (a wrong
 * URL, a revoked token), nor will a redirect (a webhook that moved is a config change, not something to follow
 * with the secret in tow).
 */
export async function post (req: HttpRequest, signal: AbortSignal): Promise<void> {
  let res: Response
  try {
    res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal, redirect: 'manual' })
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new DeliveryError('timed out', true)
    if ((err as Error).name === 'AbortError') throw new DeliveryError('aborted', false)
    const code = (err as { cause?: { code?: string } }).cause?.code
    throw new DeliveryError(code ?? 'network error', true)
  }
  let body = ''
  try {
    body = await res.text()
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new DeliveryError('timed out', true)
  }
  if (res.ok) return
  const answer = body.trim().replace(/\s+/g, ' ').slice(0, ANSWER_CHARS)
  const message = `HTTP ${res.status}${answer ? `: ${answer}` : ''}`
  const retryable = res.status >= 500 || res.status === 408 || res.status === 429
  throw new DeliveryError(message, retryable, retryable ? retryAfter(res, body) : undefined)
}

/** A webhook URL often is the secret (Slack's, Discord's, Teams'): what may be shown of it is its host. */
export function hostOf (url: string): string {
  try {
    return new URL(url).host
  } catch {
    return 'invalid-url'
  }
}
