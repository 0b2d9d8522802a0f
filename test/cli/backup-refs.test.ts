import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { dispatch } from '../../server/cli/main.ts'
import { Registry } from '../../server/engine/store/registry.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'
import { setupApp } from '../http/helper.ts'
import { memoryIO } from './cli-runner.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'cli_refs_shop', { rows: 200 })

/** Two failed records whose IDs share their first 8 characters (failed: they need no files). */
const TWINS = ['deadbeef-0000-7000-8000-000000000001', 'deadbeef-0000-7000-8000-000000000002']
async function addTwins (backupDir: string): Promise<void> {
  const registry = await Registry.open(backupDir)
  await registry.update(all => {
    for (const [i, id] of TWINS.entries()) {
      all.set(id, {
        id, name: `twin-${i}.dump`, target: 'default', database: 'cli_refs_shop', format: 'custom', compression: 'zstd', level: 3,
        options: { schemaOnly: false, dataOnly: false, schemas: [], excludeTables: [], jobs: 1, noOwner: false, noPrivileges: false },
        status: 'failed', createdAt: '2020-01-01T00:00:00.000Z', createdBy: 'test', pinned: false, error: { code: 'PG_DUMP_FAILED', message: 'test' },
      })
    }
  })
}

t.test('locally, every command taking a backup takes a prefix, a name or latest[:TARGET]', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-refs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { DATABASE_URL: cluster.url('cli_refs_shop'), PGKEEP_BACKUP_DIR: dir, PGKEEP_PG_BIN_DIR: cluster.binDir }
  const cli = async (args: string[]): Promise<{ code: number, out: string, err: string }> => {
    const io = memoryIO(env)
    const code = await dispatch(args, io)
    return { code, out: io.out(), err: io.err() }
  }
  await addTwins(dir)
  const first = JSON.parse((await cli(['create', '--json'])).out) as Backup
  const second = JSON.parse((await cli(['create', '--json'])).out) as Backup

  const infoId = async (ref: string): Promise<string> => {
    const r = await cli(['info', '--json', ref])
    t.equal(r.code, 0, `info ${ref}: ${r.err}`)
    return (JSON.parse(r.out) as { backup: Backup }).backup.id
  }
  t.equal(await infoId(first.id.slice(0, 13)), first.id, 'a unique prefix')
  t.equal(await infoId(first.name), first.id, 'the name')
  t.equal(await infoId('latest'), second.id, 'latest: the newest completed backup')
  t.equal(await infoId('latest:default'), second.id, 'latest:TARGET')
  const pin = await cli(['pin', 'latest'])
  t.equal(pin.out, `pinned ${second.name}\n`, 'pin takes the forms too')
  const validate = await cli(['validate', first.name])
  t.equal(validate.code, 0, validate.err)

  const ambiguous = await cli(['info', 'deadbeef'])
  t.equal(ambiguous.code, 2, 'an ambiguous prefix is a usage error')
  t.equal(ambiguous.err, `pgkeep: INVALID_INPUT: ID prefix "deadbeef" matches 2 backups: ${TWINS[0]} twin-0.dump; ${TWINS[1]} twin-1.dump; give more characters\n`)
  const short = await cli(['info', 'deadbe'])
  t.equal(short.code, 2)
  t.match(short.err, /at least 8 characters/)
  const noTarget = await cli(['info', 'latest:nosuch'])
  t.equal(noTarget.code, 1)
  t.match(noTarget.err, /^pgkeep: NOT_FOUND: a completed backup of target "nosuch" not found/)

  const deleted = await cli(['delete', first.id.slice(0, 13)])
  t.equal(deleted.code, 0, deleted.err)
  t.equal(deleted.out, `deleted ${first.name}\n`)
  t.notOk(existsSync(join(dir, first.name)), 'the file is gone')
  t.notOk(existsSync(join(dir, `${first.name}.manifest.json`)), 'and its manifest')
  t.equal((await cli(['info', first.id])).code, 1, 'and its record')
  const audit = readFileSync(join(dir, '.pgkeep', 'audit.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  t.match(audit.filter(e => e.action === 'backup.delete'), [{ door: 'cli', backupId: first.id, outcome: 'ok' }])
  const json = await cli(['delete', '--json', TWINS[1]])
  t.same(JSON.parse(json.out), { deleted: TWINS[1] })
})

t.test('with --server the server resolves the forms (GET /api/backup/resolve/:ref); delete takes an admin', async t => {
  const server = await setupApp(t, cluster, 'cli_refs_shop')
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const address = server.app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  const cli = async (args: string[], role: 'viewer' | 'operator' | 'admin' = 'operator'): Promise<{ code: number, out: string, err: string }> => {
    const io = memoryIO({ PGKEEP_TOKEN: server.token[role] })
    const code = await dispatch([...args, '--server', url], io)
    return { code, out: io.out(), err: io.err() }
  }
  await addTwins(server.config.backupDir)
  // the service's own write re-reads the registry, so the twins are in it from here on
  const backup = await server.service.waitFor((await server.service.create({}, 'test')).id)
  t.equal(backup.status, 'completed')

  const info = await cli(['info', '--json', 'latest'], 'viewer')
  t.equal((JSON.parse(info.out) as { backup: Backup }).backup.id, backup.id, info.err)
  const byName = await cli(['status', '--json', backup.name], 'viewer')
  t.equal((JSON.parse(byName.out) as { backup: Backup }).backup.id, backup.id)
  const ambiguous = await cli(['info', 'deadbeef'], 'viewer')
  t.equal(ambiguous.code, 2)
  t.match(ambiguous.err, /^pgkeep: INVALID_INPUT: ID prefix "deadbeef" matches 2 backups: /)

  const operator = await cli(['delete', backup.id.slice(0, 13)], 'operator')
  t.equal(operator.code, 1)
  t.match(operator.err, /^pgkeep: FORBIDDEN: /)
  t.ok(existsSync(join(server.config.backupDir, backup.name)), 'an operator deletes nothing')
  const admin = await cli(['delete', backup.id.slice(0, 13)], 'admin')
  t.equal(admin.code, 0, admin.err)
  t.equal(admin.out, `deleted ${backup.name}\n`)
  t.notOk(existsSync(join(server.config.backupDir, backup.name)))
})

t.test('a mistyped command or flag gets a suggestion', async t => {
  const cmd = memoryIO()
  t.equal(await dispatch(['lsit'], cmd), 2)
  t.equal(cmd.err(), 'pgkeep: unknown command "lsit"; did you mean "list"? (see pgkeep --help)\n')
  const flag = memoryIO()
  t.equal(await dispatch(['list', '--taget', 'x'], flag), 2)
  t.equal(flag.err(), 'pgkeep: unknown flag --taget; did you mean --target?\nsee pgkeep list --help\n')
  const prefix = memoryIO()
  t.equal(await dispatch(['cleanup', '--dry'], prefix), 2)
  t.match(prefix.err(), /^pgkeep: unknown flag --dry; did you mean --dry-run\?/)
  const far = memoryIO()
  t.equal(await dispatch(['list', '--frobnicate'], far), 2)
  t.equal(far.err(), 'pgkeep: unknown flag --frobnicate\nsee pgkeep list --help\n', 'nothing close: no guess')
})
