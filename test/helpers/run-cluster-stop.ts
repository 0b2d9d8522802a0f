// tap's `after` script: stops the run's cluster (a watchdog does it too if the runner dies first).
import { stopRunCluster } from './pg-cluster.ts'

stopRunCluster(process.ppid)
