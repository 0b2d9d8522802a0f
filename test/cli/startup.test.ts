import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BIN } from './cli-runner.ts'

// Issue 12, start-up: a command loads only what it needs. Checked by what is loaded, not by a stopwatch (the
// figures are in bench/startup.ts): every module the CLI resolves is recorded by a loader hook.
const dir = mkdtempSync(join(tmpdir(), 'pgkeep-cli-startup-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const trace = join(dir, 'trace.txt')
writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs'
export async function resolve (specifier, context, next) {
  const r = await next(specifier, context)
  appendFileSync(${JSON.stringify(trace)}, r.url + '\\n')
  return r
}
`)
writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(`file://${join(dir, 'hooks.mjs')}`)})\n`)

/** The packages and our own modules one run of the CLI resolved. */
function loaded (args: string[]): { packages: string[], ours: string[] } {
  writeFileSync(trace, '')
  const r = spawnSync(process.execPath, ['--import', join(dir, 'register.mjs'), BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PGKEEP_BACKUP_DIR: join(dir, 'backups') }, encoding: 'utf8',
  })
  t.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
  const urls = readFileSync(trace, 'utf8').split('\n').filter(u => u.startsWith('file:'))
  const packages = [...new Set(urls.map(u => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter(p => p !== undefined))]
  // run from the sources through tsx (no bundle built) or from dist/cli: tsx and its own helpers are not ours
  return { packages: packages.filter(p => !['tsx', 'esbuild', 'get-tsconfig', 'resolve-pkg-maps'].includes(p)), ours: urls.filter(u => !u.includes('node_modules')) }
}

t.test('pgkeep --help loads no command and no package', async t => {
  const { packages, ours } = loaded(['--help'])
  t.same(packages, [])
  t.same(ours.filter(u => /\/commands\/|\/dist\/cli\/(?!chunk-|main\.js)/.test(u)), [], 'no command module')
})

t.test('pgkeep list on the local engine loads neither the HTTP server, the PostgreSQL driver nor the AWS SDK', async t => {
  const { packages, ours } = loaded(['list'])
  for (const heavy of ['fastify', '@fastify/static', 'pino', 'pg', '@aws-sdk/client-s3', '@aws-sdk/lib-storage', 'ws']) {
    t.notOk(packages.includes(heavy), `${heavy} is not loaded`)
  }
  // pg is bundled into dist/cli (bin/build.js): its chunk must not be among the loaded ones either
  t.same(ours.filter(u => u.includes('/dist/cli/') && readFileSync(new URL(u), 'utf8').includes('node_modules/pg/lib/client.js')), [], 'nor the chunk that bundles pg')
})
