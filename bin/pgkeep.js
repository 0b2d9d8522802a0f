#!/usr/bin/env node
// Starts the CLI from its esbuild bundle when it is up to date with the sources (fast start, small
// memory), otherwise from the TypeScript sources through tsx (a fresh checkout, or while developing).
import { CLI, isFresh } from './freshness.js'

if (isFresh(CLI.output, CLI.sources)) {
  await import('../dist/cli/main.js')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../server/cli/main.ts')
}
