import { loadConfig } from '../../config.ts'
import { GLOBAL_HELP, intFlag, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { serveLogDestination } from '../log-destination.ts'

const help = `Usage: pgkeep serve [--host H] [--port P] [--trust-proxy] [--no-worker]

Runs the web dashboard and the REST + WebSocket API (PGKEEP_HOST/PGKEEP_PORT by default,
127.0.0.1:8080). SIGTERM or Ctrl-C stops accepting connections, cancels running backups
cleanly and flushes the audit log; a second signal exits at once. The log is one readable line per
event on a terminal and JSON lines otherwise (systemd's journal, files, log shippers).

Flags:
  --host H          address to listen on
  --port P          port (0 picks a free one)
  --trust-proxy     one reverse proxy (TLS) sits in front: honour the X-Forwarded-* it adds (Secure cookies,
                    client IPs); same as PGKEEP_TRUST_PROXY=1, which, when set, says it more precisely and wins
  --no-worker       with a shared catalog (PGKEEP_CATALOG_URL): serve the API and dashboard but run no queued
                    backups; other instances run them (same as PGKEEP_WORKER=false)

${GLOBAL_HELP}`

const options = { host: { type: 'string' }, port: { type: 'string' }, 'trust-proxy': { type: 'boolean' }, 'no-worker': { type: 'boolean' } } as const

export const command: Command = {
  name: 'serve',
  help,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values } = parseCommandArgs(argv, options, io)
    const config = loadConfig(io.env)
    if (values.host) config.host = values.host
    const port = intFlag(values.port, 'port', 0, 65535)
    if (port !== undefined) config.port = port
    if (values['trust-proxy'] === true) config.trustProxy ??= 1
    if (values['no-worker'] === true) {
      if (config.catalog === undefined) throw new UsageError('--no-worker needs a shared catalog (PGKEEP_CATALOG_URL): without one, this server is the only one to run backups')
      config.worker = false
    }
    // fastify is loaded only for this command
    const { startServer } = await import('../../http/server.ts')
    const server = await startServer(config, { logStream: await serveLogDestination(io.stdout) })
    write(io.stderr, `pgkeep listening on ${server.url}`)
    await server.closed
    return EXIT.OK
  },
}
