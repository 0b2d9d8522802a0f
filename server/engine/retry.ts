export interface RetryPolicy {
  /** total tries, the first included */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8000 }

/** Full jitter (AWS's "exponential backoff and jitter"): spreads out many clients retrying one server. */
export function backoffDelay (attempt: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(cap / 2 + random() * cap / 2)
}

function isRetryable (err: unknown): boolean {
  const e = err as { retryable?: boolean, details?: { retryable?: boolean } }
  return e?.retryable === true || e?.details?.retryable === true
}

/**
 * Retries only errors marked retryable (transient connection failures before any byte was written);
 * everything else, and the last failure, is thrown as is.
 */
export async function withRetry<T> (fn: (attempt: number) => Promise<T>, policy: RetryPolicy, opts: { signal?: AbortSignal, onRetry?: (err: unknown, attempt: number, delayMs: number) => void } = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err) || opts.signal?.aborted) throw err
      const delay = backoffDelay(attempt, policy)
      opts.onRetry?.(err, attempt, delay)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        opts.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
      if (opts.signal?.aborted) throw err
    }
  }
}
