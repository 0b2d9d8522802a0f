import { userInfo } from 'node:os'
import { loadConfig, type Config } from '../config.ts'
import type { BackupService } from '../engine/backup-service.ts'
import { write, type CliIO, type Globals } from './command.ts'
import { EXIT } from './exit-codes.ts'

/** Who the registry records as creator of a backup made from this shell. */
export function cliUser (): string {
  try { return `cli:${userInfo().username}` } catch { return 'cli' }
}

/**
 * Opens the engine on the configured backups dir for one command and always closes it, cancelling
 * anything this process still runs so no pg_dump outlives the CLI.
 */
export async function withLocalService<T> (io: CliIO, globals: Globals, fn: (service: BackupService, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env)
  // loaded on first use so --help and flag errors never depend on the engine (or pay for loading it)
  const { BackupService } = await import('../engine/backup-service.ts')
  const warn = (m: string): void => write(io.stderr, `pgkeep: warning: ${m}`)
  const service = await BackupService.open(config, {
    logger: { info: m => { if (globals.verbose) write(io.stderr, m) }, warn, error: warn },
  })
  try {
    return await fn(service, config)
  } finally {
    await service.close({ cancelRunning: true })
  }
}

/** Ctrl-C handling: the first one asks the job to stop cleanly, a second one gives up waiting. */
export function onInterrupt (io: CliIO, what: string, cancel: () => Promise<unknown>): () => void {
  let count = 0
  const handler = (): void => {
    count++
    if (count === 1) {
      write(io.stderr, `\npgkeep: cancelling ${what} (Ctrl-C again to quit without waiting)`)
      cancel().catch(() => {})
    } else {
      process.exit(EXIT.CANCELLED)
    }
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return () => {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}
