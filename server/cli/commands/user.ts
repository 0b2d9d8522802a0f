import { loadConfig } from '../../config.ts'
import { ROLES, type Role } from '../../../schemas/auth.ts'
import { auditStore, authStores, openCatalog } from '../../catalog/catalog-stores.ts'
import { enumFlag, GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { cliUser } from '../local-service.ts'
import { printJson, table } from '../output.ts'
import { readNewPassword } from '../password-prompt.ts'

const help = `Usage: pgkeep user <add|list|remove|passwd|role> [NAME] [flags]

Manage the dashboard/API users (the users file in <backupDir>/.pgkeep/users.json, or the shared
catalog when PGKEEP_CATALOG_URL is set).

  user add NAME --role viewer|operator|admin [--password-stdin]
  user list
  user remove NAME
  user passwd NAME [--password-stdin]
  user role NAME --role R

The password is asked on the terminal (not echoed) or read from stdin with --password-stdin;
it is never taken from the command line.

Flags:
  --role R            viewer < operator < admin
  --password-stdin    read the password from stdin

${GLOBAL_HELP}`

const options = { role: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const

export const command: Command = {
  name: 'user',
  help,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, options, io, { min: 1, max: 2, names: 'subcommand (add, list, remove, passwd, role)' })
    const [sub, name] = positionals
    const config = loadConfig(io.env)
    const catalog = await openCatalog(config)
    const { users } = await authStores(config.backupDir, catalog)
    const audit = await auditStore(config.backupDir, catalog)
    const record = (action: string, subject: string): Promise<void> => audit.append({ user: cliUser(), door: 'cli', ip: 'local', action, subject, outcome: 'ok' })
    const needName = (): string => {
      if (!name) throw new UsageError(`user ${sub} needs a NAME`)
      return name
    }
    const role = (): Role => {
      const r = enumFlag(values.role, 'role', ROLES)
      if (!r) throw new UsageError(`user ${sub} needs --role (${ROLES.join(', ')})`)
      return r
    }
    try {
      switch (sub) {
        case 'list': {
          const list = await users.list()
          if (globals.json) printJson(io, list)
          else if (list.length === 0) write(io.stdout, 'no users (create the first admin with: npx pgkeep user add admin --role admin)')
          else write(io.stdout, table(['USER', 'ROLE'], list.map(u => [u.username, u.role])))
          return EXIT.OK
        }
        case 'add': {
          const username = needName()
          const r = role()
          const password = await readNewPassword(io, values['password-stdin'] === true)
          const user = await users.add(username, r, password)
          await record('user.add', username)
          if (globals.json) printJson(io, user)
          else write(io.stdout, `user ${username} added with role ${r}`)
          return EXIT.OK
        }
        case 'remove': {
          const username = needName()
          await users.remove(username)
          await record('user.remove', username)
          write(io.stdout, `user ${username} removed`)
          return EXIT.OK
        }
        case 'passwd': {
          const username = needName()
          if (!await users.get(username)) throw new UsageError(`no user "${username}"`)
          await users.setPassword(username, await readNewPassword(io, values['password-stdin'] === true))
          await record('user.passwd', username)
          write(io.stdout, `password of ${username} changed`)
          return EXIT.OK
        }
        case 'role': {
          const username = needName()
          const r = role()
          await users.setRole(username, r)
          await record('user.role', username)
          write(io.stdout, `user ${username} now has role ${r}`)
          return EXIT.OK
        }
        default:
          throw new UsageError(`unknown subcommand "${sub}" (add, list, remove, passwd, role)`)
      }
    } finally {
      await audit.close()
      await catalog?.close()
    }
  },
}
