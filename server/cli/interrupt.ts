import { write, type CliIO } from './command.ts'
import { EXIT } from './exit-codes.ts'

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
