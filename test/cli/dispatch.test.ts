import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { COMMANDS, dispatch } from '../../server/cli/main.ts'
import { intFlag, parseCommandArgs, UsageError } from '../../server/cli/command.ts'
import { createRequestFromFlags } from '../../server/cli/commands/create.ts'
import { listQueryFromFlags } from '../../server/cli/commands/list.ts'
import { policyFromFlags } from '../../server/cli/commands/cleanup.ts'
import { memoryIO, runCli } from './cli-runner.ts'

const LOCAL_COMMANDS = ['create', 'list', 'info', 'status', 'validate', 'cleanup', 'delete', 'restore', 'drill', 'pin', 'cancel', 'download', 'reindex', 'doctor']

t.test('the command table names every documented command', async t => {
  t.same(Object.keys(COMMANDS).sort(), [...LOCAL_COMMANDS, 'serve', 'user', 'token', 'notify', 'catalog'].sort())
})

t.test('pgkeep --help lists every command with its summary and exits 0', async t => {
  const r = await runCli(['--help'])
  t.equal(r.code, 0)
  for (const name of LOCAL_COMMANDS) t.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name)
  t.equal(r.stderr, '')
})

t.test('the real binary prints a command\'s help with --help and exits 0', async t => {
  const r = await runCli(['create', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /^Usage: pgkeep create/)
  t.match(r.stdout, /--exclude-table T/)
})

// in-process from here on: each spawn costs seconds of tsx start-up on a shared machine
t.test('every command prints its own help with --help or -h and exits 0', async t => {
  for (const name of LOCAL_COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const io = memoryIO()
      t.equal(await dispatch([name, flag], io), 0, `${name} ${flag} exit code`)
      t.match(io.out(), new RegExp(`^Usage: pgkeep ${name}`), `${name} usage line`)
      t.match(io.out(), /--json/, `${name} mentions the global flags`)
      t.equal(io.err(), '')
    }
  }
})

t.test('unknown commands and flags exit 2 with one line naming the problem', async t => {
  const unknownCmd = await runCli(['frobnicate'])
  t.equal(unknownCmd.code, 2)
  t.equal(unknownCmd.stderr, 'pgkeep: unknown command "frobnicate" (see pgkeep --help)\n')
  const io = memoryIO()
  t.equal(await dispatch(['list', '--bogus'], io), 2)
  t.equal(io.err(), 'pgkeep: unknown flag --bogus\nsee pgkeep list --help\n')
  t.equal(io.out(), '')
  const bare = memoryIO()
  t.equal(await dispatch([], bare), 2, 'no command at all is a usage error')
  t.match(bare.err(), /^Usage: pgkeep <command>/)
})

t.test('bad flag values exit 2 naming the flag, and nothing is created in the backups dir', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-usage-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { PGKEEP_BACKUP_DIR: dir, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }
  const cases: [string[], RegExp][] = [
    [['create', '--format', 'zip'], /--format must be one of custom, plain, directory, tar/],
    [['create', '--compression', 'lz4'], /--compression must be one of/],
    [['create', '--level', '20'], /--level must be between 1 and 19/],
    [['create', '--compression', 'gzip', '--level', '12'], /--level must be between 1 and 9/],
    [['create', '--jobs', 'four', '--format', 'directory'], /--jobs must be an integer/],
    [['create', '--jobs', '4'], /--jobs above 1 needs --format directory/],
    [['create', '--name', '../etc/passwd'], /--name "\.\.\/etc\/passwd" is not valid/],
    [['create', '--schema-only', '--data-only'], /cannot be used together/],
    [['create', '--level'], /--level needs a value/],
    [['list', '--page-size', '0'], /--page-size must be between 1 and 500/],
    [['list', '--sort', 'size'], /--sort must be one of/],
    [['list', '--from', 'yesterday'], /--from must be an ISO date/],
    [['info', 'x'.repeat(201)], /a backup reference is at most 200 characters/],
    [['info'], /missing backup/],
    [['validate', '01936f1e-8a2b-7c3d-8e4f-0123456789ab', 'extra'], /unexpected argument "extra"/],
    // without --database the ID is a backup set restored whole (which only the catalog can tell): the single-backup flags say what they need
    [['restore', '01936f1e-8a2b-7c3d-8e4f-0123456789ab', '--create'], /--create applies to one backup restored with --database/],
    [['cleanup'], /no retention policy/],
    [['cleanup', '--keep-last', '0'], /--keep-last must be between 1/],
    [['cleanup', '--max-age-days=-3'], /--max-age-days must be greater than 0/],
    [['cleanup', '--max-age-days', '-3'], /--max-age-days value starts with "-"; write --max-age-days=VALUE/],
    [['list', '--server', 'http://127.0.0.1:1'], /--server needs --token or PGKEEP_TOKEN/],
    [['list', '--server', 'ftp://x', '--token', 't'], /--server must be an http\(s\):\/\/ URL/],
    // without a shared catalog this server is the only one that could run a backup
    [['serve', '--no-worker'], /--no-worker needs a shared catalog \(PGKEEP_CATALOG_URL\)/],
  ]
  for (const [args, reason] of cases) {
    const io = memoryIO(env)
    t.equal(await dispatch(args, io), 2, `${args.join(' ')} exits 2`)
    const lines = io.err().trim().split('\n')
    t.match(lines[0], /^pgkeep: /, `${args.join(' ')}: one reason line`)
    t.match(lines[0], reason, `${args.join(' ')}: names the problem`)
    t.same(lines.slice(1), [`see pgkeep ${args[0]} --help`], `${args.join(' ')}: then only the help hint`)
    t.equal(io.out(), '')
  }
  const spawned = await runCli(['create', '--format', 'zip'], env)
  t.equal(spawned.code, 2, 'the real binary exits 2 too')
  t.equal(spawned.stderr, 'pgkeep: --format must be one of custom, plain, directory, tar, got "zip"\nsee pgkeep create --help\n')
  t.same(readdirSync(dir), [], 'nothing was written to the backups dir')
})

t.test('an invalid configuration exits 2 with its one line', async t => {
  const io = memoryIO({ PGKEEP_CONFIG: '/nonexistent/pgkeep.json' })
  t.equal(await dispatch(['list'], io), 2)
  t.match(io.err(), /^pgkeep: CONFIG_INVALID: invalid configuration: PGKEEP_CONFIG: cannot read/)
  t.equal(io.err().trim().split('\n').length, 1)
})

t.test('global flags may come before the command name', async t => {
  const io = memoryIO()
  t.equal(await dispatch(['--json', 'list', '--page', 'x'], io), 2)
  t.match(io.err(), /--page must be an integer/)
})

t.test('the token can come from PGKEEP_TOKEN', async t => {
  const io = memoryIO({ PGKEEP_TOKEN: 'abc' })
  const parsed = parseCommandArgs(['--server', 'http://h:1'], {}, io)
  t.equal(parsed.globals.token, 'abc')
  t.equal(parsed.globals.server, 'http://h:1')
})

t.test('flags translate to the API body fields, leaving out what was not given', async t => {
  t.same(createRequestFromFlags(parseCommandArgs(['--format', 'directory', '--jobs', '4', '--schema', 'a', '--schema', 'b', '--exclude-table', 'x', '--schema-only'], {
    format: { type: 'string' }, jobs: { type: 'string' }, schema: { type: 'string', multiple: true }, 'exclude-table': { type: 'string', multiple: true }, 'schema-only': { type: 'boolean' },
  }, memoryIO()).values), { format: 'directory', jobs: 4, schemas: ['a', 'b'], excludeTables: ['x'], schemaOnly: true })
  t.same(listQueryFromFlags({ 'page-size': '10', from: '2026-01-02' }), { pageSize: 10, from: '2026-01-02T00:00:00.000Z' })
  t.same(policyFromFlags({ 'keep-last': '3', 'max-age-days': '1.5' }), { keepLast: 3, maxAgeDays: 1.5 })
  t.equal(policyFromFlags({}), undefined)
  t.throws(() => intFlag('1e3', 'jobs', 1, 32), UsageError)
})
