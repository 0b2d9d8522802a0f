import { loadConfig } from '../../config.ts'
import { ROLES } from '../../../schemas/auth.ts'
import { resolveJwtSecret } from '../../auth/jwt-secret.ts'
import { parseDuration } from '../../auth/token-store.ts'
import { auditStore, authStores, openCatalog } from '../../catalog/catalog-stores.ts'
import { enumFlag, GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { cliUser } from '../local-service.ts'
import { formatTime, printJson, table } from '../output.ts'

const help = `Usage: pgkeep token <create|list|revoke> [flags]

Long-lived API tokens for scripts (send as "Authorization: Bearer <token>"; the CLI reads PGKEEP_TOKEN).

  token create --name N --role viewer|operator|admin [--expires 30d]
      prints the token once; it is not stored and cannot be shown again
  token list
  token revoke ID|NAME

Flags:
  --name N        a label for the token (letters, digits, . _ -)
  --role R        viewer < operator < admin
  --expires D     lifetime: 30d, 12h, 90m, 2w (default: no expiry, revoke to end it)

The token is signed with PGKEEP_JWT_SECRET (or the generated dev secret in the backups dir):
run this with the same environment as the server.

${GLOBAL_HELP}`

const options = { name: { type: 'string' }, role: { type: 'string' }, expires: { type: 'string' } } as const

export const command: Command = {
  name: 'token',
  help,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, options, io, { min: 1, max: 2, names: 'subcommand (create, list, revoke)' })
    const [sub, id] = positionals
    const config = loadConfig(io.env)
    const catalog = await openCatalog(config)
    const { tokens } = await authStores(config.backupDir, catalog)
    const audit = await auditStore(config.backupDir, catalog)
    try {
      switch (sub) {
        case 'create': {
          if (id) throw new UsageError(`unexpected argument "${id}"`)
          if (!values.name) throw new UsageError('token create needs --name')
          const role = enumFlag(values.role, 'role', ROLES)
          if (!role) throw new UsageError(`token create needs --role (${ROLES.join(', ')})`)
          let expiresInSeconds: number | undefined
          try {
            expiresInSeconds = values.expires === undefined ? undefined : parseDuration(values.expires)
          } catch (err) {
            throw new UsageError(`--expires: ${(err as Error).message}`)
          }
          const secret = await resolveJwtSecret(config)
          const { token, info } = await tokens.create(secret, { name: values.name, role, createdBy: cliUser(), expiresInSeconds })
          await audit.append({ user: cliUser(), door: 'cli', ip: 'local', action: 'token.create', subject: info.name, outcome: 'ok' })
          if (globals.json) printJson(io, { token, ...info })
          else {
            write(io.stderr, `token ${info.name} (${info.id}, role ${role}${info.expiresAt ? `, expires ${formatTime(info.expiresAt)}` : ''}); shown once, store it now:`)
            write(io.stdout, token)
          }
          return EXIT.OK
        }
        case 'list': {
          const list = await tokens.list()
          if (globals.json) printJson(io, list)
          else if (list.length === 0) write(io.stdout, 'no API tokens')
          else {
            write(io.stdout, table(['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES', 'STATE'], list.map(t => [
              t.id, t.name, t.role, formatTime(t.createdAt), t.expiresAt ? formatTime(t.expiresAt) : 'never',
              t.revokedAt ? 'revoked' : (t.expiresAt && Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'active'),
            ])))
          }
          return EXIT.OK
        }
        case 'revoke': {
          if (!id) throw new UsageError('token revoke needs the token ID (or name)')
          const info = await tokens.revoke(id)
          await audit.append({ user: cliUser(), door: 'cli', ip: 'local', action: 'token.revoke', subject: info.name, outcome: 'ok' })
          write(io.stdout, `token ${info.name} (${info.id}) revoked`)
          return EXIT.OK
        }
        default:
          throw new UsageError(`unknown subcommand "${sub}" (create, list, revoke)`)
      }
    } finally {
      await audit.close()
      await catalog?.close()
    }
  },
}
