#!/usr/bin/env node
// Builds what is stale: the dashboard (vite -> dist/client) and the server/CLI bundle (esbuild ->
// dist/cli, so `pgkeep` starts in a fraction of a second instead of compiling TypeScript each time).
// Run by `npm start` and `npm test` (prestart/pretest), so both work straight after `npm ci`.
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, CLIENT, isFresh, root } from './freshness.js'

const force = process.argv.includes('--force')

if (force || !isFresh(CLIENT.output, CLIENT.sources)) {
  process.stderr.write('building the dashboard (vite)...\n')
  execFileSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' })
}

/**
 * Packages bundled into dist/cli rather than loaded from node_modules at run time: typebox is ~2,400 small ES
 * modules (resolving them cost ~0.4 s of every CLI start; one chunk loads in milliseconds), and pg with its
 * dependencies ~40 CommonJS files that took ~25 ms to resolve and load before every dump's first connection (its
 * optional pg-native and pg-cloudflare stay out: required only when asked for). The rest stay external: fastify
 * and pino resolve plugins and transports by path at run time, and the AWS SDK loads only for S3.
 */
const BUNDLED_PACKAGES = [
  'typebox',
  'pg', 'pg-pool', 'pg-protocol', 'pg-types', 'pg-connection-string', 'pgpass', 'split2',
  'pg-int8', 'postgres-array', 'postgres-bytea', 'postgres-date', 'postgres-interval', 'xtend',
]

function externalExcept (bundled) {
  return {
    name: 'external-except',
    setup (b) {
      b.onResolve({ filter: /^[^./]/ }, args => {
        const pkg = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0]
        return bundled.includes(pkg) ? undefined : { path: args.path, external: true }
      })
    },
  }
}

if (force || !isFresh(CLI.output, CLI.sources)) {
  process.stderr.write('bundling the server and CLI (esbuild)...\n')
  rmSync(join(root, 'dist/cli'), { recursive: true, force: true })
  const { build } = await import('esbuild')
  // dist/cli sits as deep as server/http, so paths relative to import.meta.url (../../dist/client) still hold
  await build({
    entryPoints: [join(root, 'server/cli/main.ts')],
    outdir: join(root, 'dist/cli'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [externalExcept(BUNDLED_PACKAGES)],
    sourcemap: 'linked',
    logLevel: 'warning',
    // bundled CommonJS (pg) requires node's built-ins; an ES module has no `require` of its own
    banner: { js: "import { createRequire as __pgkeepCreateRequire } from 'node:module'; const require = __pgkeepCreateRequire(import.meta.url);" },
  })
}
