#!/usr/bin/env -S node --max-semi-space-size=2
// A young generation of 2 MB semi-spaces, not V8's 16: streams leave short-lived Buffers behind, and the
// bigger the young generation the more of them wait for a scavenge. `serve` watched by 200 viewers during a
// dump peaks at ~126 MB instead of ~157 (bench/ws-fanout.ts). It has to be given at start: V8 fixes it then.
// Starts the CLI from its esbuild bundle when it is up to date with the sources (fast start, small
// memory), otherwise from the TypeScript sources through tsx (a fresh checkout, or while developing).
import module from 'node:module'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, isFresh, root } from './freshness.js'

// Node 22.1+: V8's compiled code is cached on disk between runs (tens of ms off every start); absent on Node 20
module.enableCompileCache?.()

if (isFresh(CLI.output, CLI.sources)) {
  await import('../dist/cli/main.js')
} else if (!existsSync(join(root, 'server/cli/main.ts'))) {
  // an installed package ships the bundle only: without it there is nothing to run
  process.stderr.write('pgkeep: dist/cli is missing from this installation; reinstall the package (npm pack builds it)\n')
  process.exit(1)
} else {
  // said every time, never silently: the sources start several times slower (tsx compiles them), and a bundle
  // older than the sources (an edit, a git checkout or pull since the last build) is not what they say
  process.stderr.write('pgkeep: dist/cli is missing or older than server/ or schemas/; running from the TypeScript sources (slow start): `npm run build` rebuilds it\n')
  const { register } = await import('tsx/esm/api')
  register()
  await import('../server/cli/main.ts')
}
