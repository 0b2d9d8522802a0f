export interface RetryPolicy {
  /** total tries, the first included */
  attempts: number
  /** the shortest wait, and the unit that doubles */
  baseDelayMs: number
  /** the longest wait */
  maxDelayMs: number
}

/** 4 tries; waits of 0.5-1 s, 0.5-2 s, 0.5-4 s (README "Retries"). */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8000 }

/**
 * How long to wait before retry `attempt` (1 = after the first failure): full jitter (AWS's "exponential
 * backoff and jitter"), uniform up to min(max, base x 2^attempt), so many clients retrying one server spread
 * out; but never below `base`, because a server that refused us a moment ago (starting up, too many
 * clients) will not have changed its mind within a few milliseconds. Used by every retry loop we have:
 * the dump's connection retries and webhook deliveries.
 */
export function backoffDelay (attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt)
  const floor = Math.min(policy.baseDelayMs, ceiling)
  return Math.round(floor + random() * (ceiling - floor))
}

function isRetryable (err: unknown): boolean {
  const e = err as { retryable?: boolean, details?: { retryable?: boolean } }
  return e?.retryable === true || e?.details?.retryable === true
}

/**
 * Retries only errors marked retryable (transient connection failures before any byte was written);
 * everything else, and the last failure, is thrown as is.
 */
export async function withRetry<T> (fn: (attempt: number) => Promise<T>, policy: RetryPolicy, opts: { signal?: AbortSignal, onRetry?: (err: unknown, attempt: number, delayMs: number) => void, random?: () => number } = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err) || opts.signal?.aborted) throw err
      const delay = backoffDelay(attempt, policy, opts.random)
      opts.onRetry?.(err, attempt, delay)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        opts.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
      if (opts.signal?.aborted) throw err
    }
  }
}
