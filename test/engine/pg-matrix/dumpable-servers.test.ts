import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import type { Progress } from '../../../schemas/backup.ts'
import type { Target } from '../../../server/config.ts'
import { applicationName } from '../../../server/engine/dump/dump-job.ts'
import { readCopyProgress } from '../../../server/engine/pg/inspector.ts'
import { holdDumpGate } from '../../helpers/dump-gate.ts'
import { createNamePatternDatabase, estimatedTables, namePatternCases, patternArgs, pgDumpSelection } from '../../helpers/name-pattern-cases.ts'
import { testCluster, type TestCluster } from '../../helpers/pg-cluster.ts'
import { machineClient, MATRIX_MAJORS, startVersionedCluster } from '../../helpers/pg-versions.ts'
import { createSampleDatabase, databaseFingerprint, testConfig } from '../../helpers/sample-db.ts'
import { backendsOf, openService, waitUntil } from '../../helpers/service.ts'

/**
 * The compatibility matrix, part one: every server the machine's pg_dump can dump (its own major and older) gets
 * one short round trip through pgkeep, progress, a cancel, and the estimate's name-pattern rules against that
 * server's real selection. The run's own cluster (the machine's major) is in it too; its name patterns are
 * covered by inspector.test.ts. Servers newer than every installed pg_dump: newer-servers.test.ts.
 */
const client = machineClient()
const majors = MATRIX_MAJORS.filter(m => m <= client.major)

interface Server { cluster: TestCluster, major: number, version: string, own: boolean }

const started = Date.now()
const servers: Server[] = await Promise.all([
  testCluster().then(async cluster => {
    const version = (await cluster.psql('SHOW server_version')).trim().split(' ')[0]
    return { cluster, major: Number(version.split('.')[0]), version, own: false }
  }),
  ...majors.map(async major => {
    const cluster = await startVersionedCluster(major)
    return { cluster, major, version: cluster.serverVersion, own: true }
  }),
])
for (const s of servers) t.teardown(s.cluster.stop)
t.comment(`started ${servers.map(s => s.version).join(', ')} in ${Date.now() - started} ms (client tools ${client.major})`)

// database names carry the file's prefix: the run's cluster is shared with every other test file
const SHOP = 'pgmatrix_shop'
const PATTERNS = 'pgmatrix_patterns'
const COPY_DB = 'pgmatrix_copy'

const partials = (dir: string): string[] => readdirSync(dir).filter(f => f.endsWith('.partial'))

function targetOf (cluster: TestCluster, database: string): Target {
  return { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database }
}

/**
 * A pg_dump of one big table whose stdout nobody reads yet: its COPY runs until the pipe and socket buffers fill,
 * then waits mid-table, on any machine, until finish() reads the rest.
 */
async function heldCopy (cluster: TestCluster, db: string, table: string, appName: string): Promise<{ finish: () => Promise<number | null> }> {
  const child = spawn(join(cluster.binDir, 'pg_dump'), ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', db, '-t', table, '--verbose'],
    { env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C', PGAPPNAME: appName }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = createInterface({ input: child.stderr! })
  await new Promise<void>((resolve, reject) => {
    lines.on('line', line => { if (line.includes(`dumping contents of table "${table}"`)) resolve() })
    child.once('exit', code => reject(new Error(`pg_dump exited (${code}) before copying ${table}`)))
  })
  return {
    async finish () {
      child.stdout!.resume()
      const [code] = await once(child, 'exit') as [number | null]
      return code
    },
  }
}

for (const server of servers) {
  const { cluster, version } = server
  t.test(`PostgreSQL ${version}`, async t => {
    const config = testConfig(cluster, SHOP)
    t.teardown(config.cleanup)

    t.test('custom/zstd and plain round trips: create, validate, restore to the same schema and rows, with percent progress', async t => {
      await createSampleDatabase(cluster, SHOP, { rows: 500 })
      const source = await databaseFingerprint(cluster, SHOP)
      const service = await openService(config)
      t.teardown(() => service.close({ cancelRunning: true }))
      for (const [format, compression] of [['custom', 'zstd'], ['plain', 'none']] as const) {
        const progress: Progress[] = []
        const onProgress = (p: Progress): void => { progress.push(p) }
        service.on('progress', onProgress)
        const queued = await service.create({ format, compression }, 'test')
        const done = await service.waitFor(queued.id)
        service.off('progress', onProgress)
        t.equal(done.status, 'completed', `${format}/${compression}: ${done.error?.message ?? 'completed'}`)
        t.equal(done.pgServerVersion, version, 'records the server version')
        t.equal(Number(done.pgDumpVersion?.split('.')[0]), client.major, 'and the pg_dump that dumped it')
        t.equal(done.tablesCount, 6)
        const mine = progress.filter(p => p.backupId === queued.id)
        t.ok(mine.some(p => p.percent !== undefined && p.percent > 0 && p.percent < 100), `a percent from table sizes while running (${mine.map(p => p.percent).join(' ')})`)

        const checked = await service.validate(done.id)
        t.equal(checked.verification?.ok, true, checked.verification?.message ?? '')
        if (format === 'plain') {
          const restored = 'pgmatrix_restored_plain'
          await (await service.restore(done.id, { database: restored, create: true })).done
          t.equal(await databaseFingerprint(cluster, restored), source, 'plain: restored as a new database, equal to the source')
          continue
        }
        // into an existing empty database: pg_restore alone, in one transaction
        const into = 'pgmatrix_restored_into'
        await cluster.createDatabase(into)
        await (await service.restore(done.id, { database: into })).done
        t.equal(await databaseFingerprint(cluster, into), source, `${format}: restored into an empty database, equal to the source`)

        // as a new database: pgkeep replays the archive's CREATE DATABASE, which pg_dump 15+ writes with
        // LOCALE_PROVIDER, an option servers before 15 reject: it is fitted to the server (fitCreateOptions)
        const restored = 'pgmatrix_restored_custom'
        await (await service.restore(done.id, { database: restored, create: true })).done
        t.equal(await databaseFingerprint(cluster, restored), source, `${format}: restored as a new database, equal to the source`)
        // replace (clean) creates the same way, then swaps
        await (await service.restore(done.id, { database: restored, clean: true })).done
        t.equal(await databaseFingerprint(cluster, restored), source, `${format}: replaced, equal to the source`)
      }
    })

    t.test('a cancel while pg_dump runs ends cancelled and leaves no partial', async t => {
      const service = await openService(config)
      t.teardown(() => service.close({ cancelRunning: true }))
      const gate = await holdDumpGate(cluster, SHOP)
      t.teardown(gate.release)
      const b = await service.create({ compression: 'zstd' }, 'test')
      await waitUntil(async () => partials(config.backupDir).length === 1 && await backendsOf(cluster, applicationName(b.id)) > 0, 20_000, 'pg_dump to start')
      const final = await service.cancel(b.id)
      t.equal(final.status, 'cancelled')
      t.same(partials(config.backupDir), [], 'partial removed')
      t.notOk(existsSync(join(config.backupDir, b.name)), 'no final file')
    })

    t.test(server.major >= 14 ? 'COPY progress inside a table is sampled (pg_stat_progress_copy)' : 'COPY progress is skipped quietly: pg_stat_progress_copy arrived in 14', async t => {
      await cluster.createDatabase(COPY_DB)
      // ~4 MB of COPY text: far more than the pipe and socket buffers hold
      await cluster.psql('CREATE TABLE public.copyme AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g; ANALYZE', COPY_DB)
      const appName = `pgkeep-test-matrix-${server.major}`
      const held = await heldCopy(cluster, COPY_DB, 'public.copyme', appName)
      try {
        const target = targetOf(cluster, COPY_DB)
        if (server.major >= 14) {
          const relid = Number(await cluster.psql(`SELECT 'public.copyme'::regclass::oid`, COPY_DB))
          let sample: Awaited<ReturnType<typeof readCopyProgress>>
          await waitUntil(async () => (sample = await readCopyProgress(target, appName)) !== undefined, 20_000, 'a COPY sample')
          t.equal(sample?.relid, relid)
          t.ok(sample!.tuplesProcessed > 0 && sample!.tuplesProcessed < 100_000, `mid-table: ${sample?.tuplesProcessed} tuples`)
        } else {
          // the COPY is running now, held mid-table: there is simply nothing to read on this server
          t.equal(await readCopyProgress(target, appName), undefined)
        }
      } finally {
        t.equal(await held.finish(), 0, 'the held pg_dump completes')
      }
    })

    if (server.own) {
      t.test('the estimate selects the same tables as pg_dump -n/-T on this server', async t => {
        await createNamePatternDatabase(cluster, PATTERNS)
        const target = targetOf(cluster, PATTERNS)
        t.same(await estimatedTables(target, [], []), await pgDumpSelection(cluster, PATTERNS, []), 'no filters')
        for (const c of namePatternCases(PATTERNS)) {
          const [ours, theirs] = await Promise.all([estimatedTables(target, c.schemas ?? [], c.exclude ?? []), pgDumpSelection(cluster, PATTERNS, patternArgs(c))])
          t.same(ours, theirs, c.what)
        }
      })
    }
  })
}
