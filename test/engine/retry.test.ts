import t from 'tap'
import { backoffDelay, DEFAULT_RETRY, withRetry, type RetryPolicy } from '../../server/engine/retry.ts'

const lowest = (): number => 0
const highest = (): number => 1 - Number.EPSILON

t.test('the default backoff waits between 0.5 s and min(8 s, 0.5 s x 2^n) before retry n, as the README says', async t => {
  const floors = [1, 2, 3, 4, 5, 6].map(n => backoffDelay(n, DEFAULT_RETRY, lowest))
  const ceilings = [1, 2, 3, 4, 5, 6].map(n => backoffDelay(n, DEFAULT_RETRY, highest))
  t.same(floors, [500, 500, 500, 500, 500, 500], 'never sooner than half a second')
  t.same(ceilings, [1000, 2000, 4000, 8000, 8000, 8000], 'doubling, capped at 8 s')
  t.equal(backoffDelay(2, DEFAULT_RETRY, () => 0.5), 1250, 'full jitter: uniform between the floor and the ceiling')
})

t.test('any policy: every delay lies within [base, min(max, base x 2^n)] for any draw', async t => {
  const policy: RetryPolicy = { attempts: 10, baseDelayMs: 20, maxDelayMs: 50 }
  for (let n = 1; n <= 8; n++) {
    for (const r of [0, 0.1, 0.37, 0.5, 0.99, 1 - Number.EPSILON]) {
      const d = backoffDelay(n, policy, () => r)
      t.ok(d >= 20 && d <= Math.min(50, 20 * 2 ** n), `retry ${n}, draw ${r}: ${d} ms`)
    }
  }
})

t.test('withRetry waits the helper\'s delays, drawn from the random source it is given', async t => {
  const policy: RetryPolicy = { attempts: 3, baseDelayMs: 5, maxDelayMs: 15 }
  const waits: number[] = []
  let calls = 0
  const result = await withRetry(async () => {
    if (++calls < 3) throw Object.assign(new Error('refused'), { retryable: true })
    return 'ok'
  }, policy, { random: highest, onRetry: (_err, _attempt, delayMs) => waits.push(delayMs) })
  t.equal(result, 'ok')
  t.same(waits, [10, 15])
})
