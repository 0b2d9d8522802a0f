import type { InstanceStatus } from '../../schemas/health.ts'
import { PgkeepError } from '../errors.ts'

/** What readiness and /metrics ask the service: this instance and the shared queue, or undefined without a catalog. */
export type InstanceStatusSource = () => Promise<InstanceStatus | undefined>

/**
 * How long a probe or a scrape waits for the catalog. A catalog statement stuck behind a lock holds on for its
 * 30 s statement timeout, longer than an orchestrator's probe or Prometheus's scrape (10 s) waits: they would
 * time out and learn nothing, where a failed `catalog` check says what is wrong.
 */
export const INSTANCE_STATUS_TIMEOUT_MS = 5000

/** The source's answer, or a TIMEOUT error once `timeoutMs` passed without one (the query is left to end alone). */
export async function instanceStatusWithin (source: InstanceStatusSource, timeoutMs = INSTANCE_STATUS_TIMEOUT_MS): Promise<InstanceStatus | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new PgkeepError('TIMEOUT', `the catalog did not answer within ${timeoutMs / 1000} s`)), timeoutMs)
  })
  try {
    return await Promise.race([source(), late])
  } finally {
    clearTimeout(timer)
  }
}
