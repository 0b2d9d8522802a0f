import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestCluster } from './pg-cluster.ts'

/**
 * The scratch databases that drills of one backups dir recorded (`.pgkeep/drills.json`) and that still exist.
 * Scoped to the dir: test files run side by side on one cluster, and another file's drill may be running.
 */
export async function leftDrillDatabases (cluster: TestCluster, backupDir: string): Promise<string[]> {
  let names: string[]
  try {
    const { drills } = JSON.parse(readFileSync(join(backupDir, '.pgkeep', 'drills.json'), 'utf8')) as { drills: Array<{ scratch: string[] }> }
    names = drills.flatMap(d => d.scratch)
  } catch {
    return []
  }
  if (names.length === 0) return []
  const list = names.map(n => `'${n.replace(/'/g, "''")}'`).join(', ')
  return (await cluster.psql(`SELECT datname FROM pg_database WHERE datname IN (${list}) ORDER BY 1`)).split('\n').filter(Boolean)
}

/** A drill's restore is copying rows into its scratch database (the drill's name, or the restore's name under it). */
export async function drillCopying (cluster: TestCluster, database: string): Promise<boolean> {
  return Number(await cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '${database}%' AND query LIKE 'COPY%'`)) > 0
}
