// tap's `before` script: one PostgreSQL cluster for the whole run (test files find it through testCluster()),
// and the bundle the CLI tests run brought up to date with the sources (as `npm test`'s pretest does), so a
// `npx tap file` after an edit tests the edit, from the bundle, before any test file starts.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startRunCluster } from './pg-cluster.ts'

execFileSync(process.execPath, [fileURLToPath(new URL('../../bin/build.js', import.meta.url))], { stdio: ['ignore', 'ignore', 'inherit'] })
await startRunCluster(process.ppid)
