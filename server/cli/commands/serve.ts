import { loadConfig } from '../../config.ts'
import { GLOBAL_HELP, intFlag, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { serveLogDestination } from '../log-destination.ts'

const help = `Usage: pgkeep serve [--host H] [--port P] [--trust-proxy]

Runs the web dashboard and the REST + WebSocket API (PGKEEP_HOST/PGKEEP_PORT by default,
127.0.0.1:8080). SIGTERM or Ctrl-C stops accepting connections, cancels running backups
cleanly and flushes the audit log; a second signal exits at once. The log is one readable line per
event on a terminal and JSON lines otherwise (systemd's journal, files, log shippers).

Flags:
  --host H          address to listen on
  --port P          port (0 picks a free one)
  --trust-proxy     one reverse proxy (TLS) sits in front: honour the X-Forwarded-* it adds (Secure cookies,
                    client IPs); same as PGKEEP_TRUST_PROXY=1, which, when set, says it more precisely and wins

${GLOBAL_HELP}`

const options = { host: { type: 'string' }, port: { type: 'string' }, 'trust-proxy': { type: 'boolean' } } as const

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
    // fastify is loaded only for this command
    const { startServer } = await import('../../http/server.ts')
    const server = await startServer(config, { logStream: await serveLogDestination(io.stdout) })
    write(io.stderr, `pgkeep listening on ${server.url}`)
    await server.closed
    return EXIT.OK
  },
}
