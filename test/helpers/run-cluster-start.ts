// tap's `before` script: one PostgreSQL cluster for the whole run (test files find it through testCluster()).
// The bundle the CLI tests run is built by `npm test`'s pretest, not here: a build started from this script is
// tracked by tap, and its coverage failed the whole run (exit 1 with every test passing). After an edit, a plain
// `npx tap file` runs the CLI through tsx and bin/pgkeep.js says so; `npm run build` first avoids that.
import { startRunCluster } from './pg-cluster.ts'

await startRunCluster(process.ppid)
