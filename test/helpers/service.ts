import { BackupService } from '../../server/engine/backup-service.ts'
import type { Config } from '../../server/config.ts'
import type { TestCluster } from './pg-cluster.ts'

/** Test retries stay quick: the behaviour (bounded, only before the first byte) is what we check. */
export const FAST_RETRY = { attempts: 3, baseDelayMs: 20, maxDelayMs: 50 }

export async function openService (config: Config): Promise<BackupService> {
  return await BackupService.open(config, { retry: FAST_RETRY })
}

/** Backends still connected for a job, by the application_name pgkeep gives each one. */
export async function backendsOf (cluster: TestCluster, appName: string): Promise<number> {
  return Number((await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = '${appName}'`)).trim())
}

export async function waitUntil (check: () => Promise<boolean> | boolean, timeoutMs = 15000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
