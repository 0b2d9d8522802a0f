import type pg from 'pg'
import type { Target } from '../../config.ts'
import { PgkeepError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'

/**
 * The database pgkeep connects to for its own work around a restore (CREATE/DROP DATABASE,
 * cancelling backends): never the one being restored, which may be dropped.
 */
export function adminTarget (target: Target, restoreDb: string): Target {
  return { ...target, database: restoreDb === 'postgres' ? 'template1' : 'postgres' }
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

async function exists (client: pg.Client, db: string): Promise<boolean> {
  const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])
  return (r.rowCount ?? 0) > 0
}

function sqlError (err: unknown, db: string, target: Target): PgkeepError {
  const e = err as { code?: string, message?: string }
  if (e?.code === '42P04') return new PgkeepError('CONFLICT', `database "${db}" already exists on target "${target.name}"; restore with clean to replace it`)
  // 55006: other sessions are connected; DROP DATABASE refuses rather than cut them off
  if (e?.code === '55006') return new PgkeepError('CONFLICT', `database "${db}" on target "${target.name}" is in use by other sessions; disconnect them before replacing it`)
  if (e?.code === '42501') return new PgkeepError('PG_RESTORE_FAILED', `user "${target.user}" may not create or drop database "${db}": ${e.message}`)
  if (err instanceof PgkeepError) return err
  return new PgkeepError('PG_RESTORE_FAILED', `preparing database "${db}" failed: ${e?.message ?? String(err)}`)
}

export interface PreparedDatabase {
  /** true when the database was (re)created empty, so the restore needs no --clean */
  fresh: boolean
}

/**
 * Makes the restore's database ready. `create` creates it from template0 (so nothing from a
 * customised template1 collides with the dump); an existing one is a CONFLICT unless `clean`,
 * which drops and re-creates it. Plain SQL dumps carry no DROP statements, so `clean` on a plain
 * restore always means drop and re-create.
 */
export async function prepareDatabase (target: Target, db: string, opts: { create: boolean, clean: boolean, plain: boolean }): Promise<PreparedDatabase> {
  const recreate = opts.clean && (opts.create || opts.plain)
  if (!opts.create && !recreate) return { fresh: false }
  return await withTargetClient(adminTarget(target, db), async client => {
    try {
      const present = await exists(client, db)
      if (present && !opts.clean) throw sqlError({ code: '42P04' }, db, target)
      if (!present && !opts.create) throw new PgkeepError('NOT_FOUND', `database "${db}" does not exist on target "${target.name}"; restore with create to make it`)
      if (present) await client.query(`DROP DATABASE ${quoteIdent(db)}`)
      await client.query(`CREATE DATABASE ${quoteIdent(db)} TEMPLATE template0`)
      return { fresh: true }
    } catch (err) {
      throw sqlError(err, db, target)
    }
  })
}

/**
 * After the client is killed its server backend may still be running the last statement:
 * cancel every backend carrying the job's application_name, wait for them to go, and terminate
 * any that outlive the grace period.
 */
export async function stopBackends (target: Target, restoreDb: string, appName: string, graceMs: number): Promise<void> {
  await withTargetClient(adminTarget(target, restoreDb), async client => {
    const others = 'FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()'
    await client.query(`SELECT pg_cancel_backend(pid) ${others}`, [appName])
    let deadline = Date.now() + graceMs
    let terminated = false
    for (;;) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n ${others}`, [appName])
      if (Number(r.rows[0].n) === 0) return
      if (Date.now() >= deadline) {
        if (terminated) return
        await client.query(`SELECT pg_terminate_backend(pid) ${others}`, [appName])
        terminated = true
        deadline = Date.now() + 5000
      }
      // polling pg_stat_activity: there is no event for "that backend has gone"
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })
}
