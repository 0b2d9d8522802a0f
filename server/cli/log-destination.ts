import type { DestinationStream } from 'pino'

/**
 * Where `serve` writes its log: on a terminal, pino-pretty's one line per event (time, level, message, the
 * request in short); anywhere else (systemd's journal, a file, a log shipper) pino's JSON lines, untouched.
 * pino-pretty runs in this thread, synchronously, so the last lines before an exit are never lost.
 */
export async function serveLogDestination (stdout: NodeJS.WritableStream & { isTTY?: boolean }): Promise<DestinationStream | undefined> {
  if (stdout.isTTY !== true) return undefined
  const { default: pretty } = await import('pino-pretty')
  return pretty({ colorize: true, sync: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss', ignore: 'pid,hostname', destination: 1 })
}
