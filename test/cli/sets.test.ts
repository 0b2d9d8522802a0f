import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { runCli } from './cli-runner.ts'

// a server of its own: --all-databases takes every database there is
const cluster = await startCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_sets_one', { rows: 200 })
await createSampleDatabase(cluster, 'cli_sets_two', { rows: 200 })
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-sets-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const env = { DATABASE_URL: cluster.url('cli_sets_one'), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir }

t.test('create --all-databases makes one set; list shows it as one entry with its members under it', async t => {
  const created = await runCli(['create', '--all-databases'], env)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /^Set: +default-set-\S+ \(id (\S+)\)$/m)
  t.match(created.stdout, /Status: +completed/)
  t.match(created.stdout, /2 databases: cli_sets_one, cli_sets_two/)
  const setId = /\(id (\S+)\)/.exec(created.stdout)![1]

  const list = await runCli(['list'], env)
  t.equal(list.code, 0, list.stderr)
  const lines = list.stdout.trim().split('\n')
  t.equal(lines.length, 5, `a header, the set, then its three members:\n${list.stdout}`)
  t.match(lines[1], new RegExp(`^${setId} +default-set-\\S+ \\(set: 2 databases \\+ globals\\) +default +completed`))
  t.match(lines[2], /^\S+ +  globals: default-globals-\S+\.sql\.zst +default +completed/)
  t.match(lines[3], /^\S+ +  cli_sets_one: default-cli_sets_one-\S+\.dump\.zst/)
  t.match(lines[4], /^\S+ +  cli_sets_two: /)

  const info = await runCli(['info', setId], env)
  t.equal(info.code, 0, info.stderr)
  t.match(info.stdout, /Members:/)

  const json = await runCli(['list', '--json'], env)
  t.equal(JSON.parse(json.stdout).items.filter((b: { set?: { id: string } }) => b.set?.id === setId).length, 3, '--json keeps the flat list, each member naming its set')

  const onto = await runCli(['restore', setId], env)
  t.equal(onto.code, 2, 'a set restore onto the server that still has its databases is refused (TARGET_NOT_EMPTY is the caller\'s to fix)')
  t.match(onto.stderr, /^pgkeep: TARGET_NOT_EMPTY: .*cli_sets_one/m)
})

t.test('bad set flags are usage errors: exit 2 with a one-line reason', async t => {
  const cases: [string[], RegExp][] = [
    [['create', '--all-databases', '--database', 'cli_sets_one'], /--all-databases takes every database/],
    [['create', '--all-databases', '--schema', 'public'], /--schema needs a single-database backup/],
    [['create', '--all-databases', '--target', 'nope'], /unknown target "nope"/],
    [['restore', '01936f6e-0000-7000-8000-000000000000', '--skip-globals', '--database', 'x'], /--skip-globals applies to a set restore/],
    [['restore', '01936f6e-0000-7000-8000-000000000000', '--clean'], /--clean applies to one backup/],
    [['restore', '01936f6e-0000-7000-8000-000000000000'], /--database is required to restore one backup \(.* is not a backup set\)/],
    [['restore', '01936f6e-0000-7000-8000-000000000000', '--to', 'a', '--target', 'b'], /--to is another name for --target/],
  ]
  for (const [args, message] of cases) {
    const r = await runCli(args, env)
    t.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.match(r.stderr.split('\n')[0], message, 'the first line says why')
  }
})
