import pg from 'pg'
import type { TestCluster } from './pg-cluster.ts'

export interface HeldLock {
  /** commits the transaction holding the lock, so whatever waited on it goes on */
  release (): Promise<void>
}

/**
 * Makes a dump slow by construction rather than by size: pg_dump (and pgkeep's size query before it)
 * take ACCESS SHARE on every table they copy, so an ACCESS EXCLUSIVE lock held in an open transaction
 * keeps the job running, on any machine, until the test releases it.
 */
export async function holdTableLock (cluster: TestCluster, database: string, table: string): Promise<HeldLock> {
  const client = new pg.Client({ connectionString: cluster.url(database) })
  await client.connect()
  await client.query('BEGIN')
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
  let released = false
  return {
    async release () {
      if (released) return
      released = true
      try {
        await client.query('COMMIT')
      } finally {
        await client.end()
      }
    },
  }
}
