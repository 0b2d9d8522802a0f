// tap's `before` script: one PostgreSQL cluster for the whole run (test files find it through testCluster()).
import { startRunCluster } from './pg-cluster.ts'

await startRunCluster(process.ppid)
