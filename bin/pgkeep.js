#!/usr/bin/env node
// Starts the CLI from its esbuild bundle when it is up to date with the sources (fast start, small
// memory), otherwise from the TypeScript sources through tsx (a fresh checkout, or while developing).
import module from 'node:module'
import { CLI, isFresh } from './freshness.js'

// Node 22.1+: V8's compiled code is cached on disk between runs (tens of ms off every start); absent on Node 20
module.enableCompileCache?.()

if (isFresh(CLI.output, CLI.sources)) {
  await import('../dist/cli/main.js')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../server/cli/main.ts')
}
