import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Backup } from '../../schemas/backup.ts'
import { TEST_JWT_SECRET } from '../helpers/app.ts'
import { testCluster } from '../helpers/pg-cluster.ts'
import { createSampleDatabase } from '../helpers/sample-db.ts'

// Issue 15, distribution: `npm pack` makes a package that installs with `npm install -g` and works from any
// directory, without dev dependencies and without a build at install time. The pack runs in a copy of the
// sources (its prepack builds dist/ there, never under the feet of the other test files that run bin/pgkeep.js).
const root = fileURLToPath(new URL('../..', import.meta.url))
const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'dist_pkg_shop', { rows: 100 })

const work = mkdtempSync(join(tmpdir(), 'pgkeep-dist-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const src = join(work, 'src')
for (const entry of ['bin', 'client', 'schemas', 'server', 'docs', 'README.md', 'package.json', 'package-lock.json', 'vite.config.ts', 'tsconfig.json']) {
  cpSync(join(root, entry), join(src, entry), { recursive: true })
}
symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'))
const npm = (args: string[], cwd: string): ReturnType<typeof spawnSync> =>
  spawnSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } })

const packed = npm(['pack', '--pack-destination', work], src)
const tarball = readdirSync(work).find(f => /^pgkeep-.*\.tgz$/.test(f))
const prefix = join(work, 'prefix')
// tarballs from the npm cache when it has them, package metadata (and anything missing) from the registry
const installed = tarball ? npm(['install', '-g', '--prefix', prefix, '--prefer-offline', join(work, tarball)], work) : undefined
const unreachable = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network/i.test(String(installed?.stderr ?? ''))
const pkgDir = join(prefix, 'lib', 'node_modules', 'pgkeep')
const bin = join(prefix, 'bin', 'pgkeep')
const elsewhere = join(work, 'anywhere')
mkdirSync(elsewhere)
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, DATABASE_URL: cluster.url('dist_pkg_shop'), PGKEEP_PG_BIN_DIR: cluster.binDir }

t.test('npm pack builds the dashboard and the CLI bundle and packs them, without sources or tests', async t => {
  t.equal(packed.status, 0, String(packed.stderr))
  t.ok(tarball, 'a pgkeep-*.tgz')
  const list = spawnSync('tar', ['tzf', join(work, tarball ?? 'none')], { encoding: 'utf8' }).stdout.split('\n')
  t.ok(list.includes('package/dist/cli/main.js'), 'the CLI bundle')
  t.ok(list.includes('package/dist/client/index.html'), 'the dashboard')
  t.ok(list.includes('package/bin/pgkeep.js'))
  t.notOk(list.some(f => /^package\/(server|schemas|test|client)\//.test(f)), 'no TypeScript sources, no tests')
  t.notOk(list.some(f => f.endsWith('.map')), 'no source maps')
})

t.test('npm install -g of the tarball gives a working pgkeep from any directory', { skip: unreachable ? `the npm registry is unreachable and the npm cache lacks package metadata: ${String(installed?.stderr).split('\n')[0]}` : false }, async t => {
  t.equal(installed?.status, 0, String(installed?.stderr))
  t.ok(existsSync(bin), 'bin/pgkeep linked')
  const deps = readdirSync(join(pkgDir, 'node_modules'))
  for (const dev of ['tsx', 'esbuild', 'tap', 'vite', 'svelte', 'typescript', 'playwright-core', 's3rver']) t.notOk(deps.includes(dev), `no ${dev}`)

  const help = spawnSync(bin, ['--help'], { cwd: elsewhere, env, encoding: 'utf8' })
  t.equal(help.status, 0, help.stderr)
  t.match(help.stdout, /^Usage: pgkeep <command>/)

  const create = spawnSync(bin, ['create', '--json'], { cwd: elsewhere, env, encoding: 'utf8' })
  t.equal(create.status, 0, create.stderr)
  const backup = JSON.parse(create.stdout) as Backup
  t.equal(backup.status, 'completed')
  t.ok(existsSync(join(elsewhere, 'backups', backup.name)), 'written under ./backups of the directory it ran in')

  const server = spawn(bin, ['serve', '--port', '0'], { cwd: elsewhere, env: { ...env, PGKEEP_JWT_SECRET: TEST_JWT_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { server.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    let err = ''
    server.stderr.on('data', (d: Buffer) => { err += d.toString(); const m = /listening on (http:\/\/\S+)/.exec(err); if (m) resolve(m[1]) })
    server.once('close', () => reject(new Error(`serve ended: ${err}`)))
  })
  t.equal((await fetch(`${url}/api/health`)).status, 200, 'the API answers')
  const page = await fetch(`${url}/`)
  t.equal(page.status, 200, 'the dashboard is served')
  t.match(await page.text(), /<script/)
  const closed = new Promise(resolve => server.once('close', resolve))
  server.kill('SIGTERM')
  await closed
})
