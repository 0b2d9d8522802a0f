import { execFile, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { createEncryptor } from '../../../server/engine/pg/age.ts'
import { createCompressor } from '../../../server/engine/pg/codec.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, databaseFingerprint } from '../../helpers/sample-db.ts'
import { newAgeKey } from '../../helpers/age-keys.ts'

// The README's promise: with the key and stock tools alone (age, zstd/gunzip, pg_restore/psql) an encrypted
// backup restores. Dumps are made by the real pg_dump through pgkeep's own compress-then-encrypt stages.

const run = promisify(execFile)
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'age_stock_src')
const source = await databaseFingerprint(cluster, 'age_stock_src')
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-age-stock-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const { identity: key, recipient } = newAgeKey(dir, 'key')

const pgEnv = { ...process.env, PGHOST: cluster.host, PGPORT: String(cluster.port), PGUSER: cluster.user, PGPASSWORD: cluster.password }

async function encryptedDump (format: 'c' | 'p' | 't', compression: 'zstd' | 'gzip', out: string): Promise<void> {
  const dump = spawn(join(cluster.binDir, 'pg_dump'), [`-F${format}`, '-d', 'age_stock_src'], { env: pgEnv, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>(resolve => dump.on('close', resolve))
  const compressor = await createCompressor(compression, 3)
  await pipeline([dump.stdout, compressor.stream, (await createEncryptor([recipient])).stream, createWriteStream(out)])
  if (await exited !== 0) throw new Error('pg_dump failed')
}

const cases: [string, 'c' | 'p' | 't', 'zstd' | 'gzip', string][] = [
  ['custom/zstd', 'c', 'zstd', 'age -d -i "$KEY" "$F" | zstd -dc | "$BIN/pg_restore" -d "$DB"'],
  ['plain/gzip', 'p', 'gzip', 'age -d -i "$KEY" "$F" | gunzip | "$BIN/psql" -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null'],
  ['tar/zstd', 't', 'zstd', 'age -d -i "$KEY" "$F" | zstd -dc | "$BIN/pg_restore" -d "$DB"'],
]

for (const [label, format, compression, command] of cases) {
  t.test(`an encrypted ${label} backup restores with stock tools: ${command.replace(/"/g, '').replace(/\$BIN\//g, '')}`, async t => {
    const file = join(dir, `backup-${format}.${compression}.age`)
    await encryptedDump(format, compression, file)
    const db = `age_stock_${format}`
    await cluster.createDatabase(db)
    await run('bash', ['-o', 'pipefail', '-c', command], { env: { ...pgEnv, KEY: key, F: file, BIN: cluster.binDir, DB: db } })
    t.same(await databaseFingerprint(cluster, db), source, 'same schema and rows')
  })
}
