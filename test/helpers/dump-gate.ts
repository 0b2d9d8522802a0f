import pg from 'pg'
import type { TestCluster } from './pg-cluster.ts'

export interface DumpGate {
  /** commits the transaction holding the lock: the waiting pg_dump goes on */
  release (): Promise<void>
}

/**
 * Makes a dump slow by construction rather than by size, for tests that need one still running: a view
 * `public.dump_gate` (over no table) locked ACCESS EXCLUSIVE in an open transaction. pgkeep's size query
 * before the dump never touches views, so the job gets to `running` and opens its partial file; pg_dump
 * then waits in pg_get_viewdef() until release(), on any machine, and a cancel reaches it there at once.
 * (Locking a table instead would stop the size query before it, so no partial file would exist yet.)
 */
export async function holdDumpGate (cluster: TestCluster, database: string): Promise<DumpGate> {
  await cluster.psql('CREATE OR REPLACE VIEW public.dump_gate AS SELECT 1 AS open', database)
  const client = new pg.Client({ connectionString: cluster.url(database) })
  await client.connect()
  await client.query('BEGIN')
  await client.query('LOCK TABLE public.dump_gate IN ACCESS EXCLUSIVE MODE')
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
