import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { uuidv7 } from 'uuidv7'
import type { Backup, RestoreRequest } from '../../../schemas/backup.ts'
import type { BackupSet, SetRestoreState } from '../../../schemas/sets.ts'
import type { Target } from '../../config.ts'
import { InvalidStateError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'
import { inspectDestination } from '../restore/database.ts'
import type { RestoreJob } from '../restore/restore-job.ts'
import { backupBytes } from '../storage/backup-bytes.ts'
import type { Storage } from '../storage/storage.ts'
import { maintenanceTarget } from './discover.ts'
import { planGlobals } from './globals-sql.ts'

export interface SetRestoreContext {
  set: BackupSet
  target: Target
  storageOf: (b: Backup) => Storage
  identityFile?: string
  skipGlobals?: boolean
  /** the service's own single-backup restore (checks, journal, tracker): each database goes through it */
  restoreMember: (b: Backup, req: RestoreRequest) => Promise<RestoreJob>
  onChange: (s: SetRestoreState) => void
}

export interface SetRestoreRun {
  state: () => SetRestoreState
  done: Promise<SetRestoreState>
  cancel: () => Promise<SetRestoreState>
}

const DUPLICATE_OBJECT = '42710'

/** The globals member's SQL, decrypted and decompressed (it is small: roles and tablespaces). */
async function readGlobalsScript (b: Backup, storage: Storage, identityFile?: string): Promise<string> {
  const bytes = backupBytes(b, storage, identityFile)
  const chunks: Buffer[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { chunks.push(chunk); cb() } })
  const decoders = await bytes.decoders()
  await (pipeline as (...s: unknown[]) => Promise<void>)(await bytes.open(), ...decoders.map(d => d.stage.stream), sink)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Globals on the destination, statement by statement on one connection: roles that exist are left alone
 * (globals-sql.ts), a tablespace that exists is skipped (duplicate_object); any other failure stops the restore
 * before a database is touched, naming the statement.
 */
export async function applyGlobals (target: Target, script: string): Promise<string[]> {
  return await withTargetClient(maintenanceTarget(target), async c => {
    const existing = new Set((await c.query<{ rolname: string }>('SELECT rolname FROM pg_catalog.pg_roles')).rows.map(r => r.rolname))
    const plan = planGlobals(script, existing)
    const skipped = [...plan.skipped]
    for (const statement of plan.statements) {
      try {
        await c.query(statement)
      } catch (err) {
        const e = err as { code?: string, message?: string }
        if (e.code === DUPLICATE_OBJECT) { skipped.push(e.message ?? statement.slice(0, 80)); continue }
        throw new PgkeepError('PG_RESTORE_FAILED', `globals: ${e.message ?? String(err)} (in: ${statement.slice(0, 120)})`)
      }
    }
    return skipped
  })
}

/**
 * How each database member is written: created when the server lacks it, restored into it when it exists but is
 * empty (a fresh server's own `postgres`), refused otherwise. Decided for all before anything is written, so a
 * refusal reaches the caller as an error and the server is untouched.
 */
async function planMembers (ctx: SetRestoreContext, databases: Backup[]): Promise<Map<string, RestoreRequest>> {
  const reqs = new Map<string, RestoreRequest>()
  const inUse: string[] = []
  for (const m of databases) {
    const dest = await inspectDestination(ctx.target, m.database)
    if (!dest.exists) reqs.set(m.id, { database: m.database, target: ctx.target.name, create: true })
    else if (dest.objects.length === 0) reqs.set(m.id, { database: m.database, target: ctx.target.name })
    else inUse.push(`${m.database} (${dest.objects.slice(0, 2).join(', ')}${dest.objects.length > 2 ? ', ...' : ''})`)
  }
  if (inUse.length > 0) {
    throw new PgkeepError('TARGET_NOT_EMPTY', `target ${ctx.target.name} already has ${inUse.length === 1 ? 'the database' : 'databases'} ${inUse.join('; ')} with objects in them; a set restores onto a server without its databases (restore one member with clean to replace one)`)
  }
  return reqs
}

/**
 * Rebuilds a server from a completed set: the globals first, then each database in turn through the ordinary
 * restore (a new database is filled under a scratch name and renamed into place). A member that fails stops the
 * set restore (what is restored stays, named in the state); cancel stops the member running and the rest.
 */
export async function startSetRestore (ctx: SetRestoreContext): Promise<SetRestoreRun> {
  const { set } = ctx
  if (set.status !== 'completed') throw new InvalidStateError(`backup set ${set.name} is ${set.status}; only a completed set can be restored whole (restore its completed members one by one)`)
  const globals = set.members.find(m => m.kind === 'globals')
  const databases = set.members.filter(m => m.kind !== 'globals')
  const reqs = await planMembers(ctx, databases)
  const state: SetRestoreState = {
    restoreId: uuidv7(),
    setId: set.id,
    target: ctx.target.name,
    status: 'running',
    globalsSkipped: [],
    members: set.members.map(m => ({ backupId: m.id, database: m.database, status: m.kind === 'globals' && ctx.skipGlobals === true ? 'skipped' : 'pending' })),
    at: new Date().toISOString(),
  }
  const change = (): void => { state.at = new Date().toISOString(); ctx.onChange({ ...state, members: state.members.map(m => ({ ...m })) }) }
  const memberState = (id: string): SetRestoreState['members'][number] => state.members.find(m => m.backupId === id)!
  let cancelled = false
  let running: RestoreJob | undefined

  const run = async (): Promise<SetRestoreState> => {
    try {
      if (globals !== undefined && ctx.skipGlobals !== true) {
        memberState(globals.id).status = 'running'
        change()
        state.globalsSkipped = await applyGlobals(ctx.target, await readGlobalsScript(globals, ctx.storageOf(globals), ctx.identityFile))
        memberState(globals.id).status = 'completed'
        change()
      }
      for (const m of databases) {
        if (cancelled) throw new PgkeepError('CANCELLED', 'the set restore was cancelled')
        memberState(m.id).status = 'running'
        change()
        running = await ctx.restoreMember(m, reqs.get(m.id)!)
        try {
          await running.done
        } finally {
          running = undefined
        }
        memberState(m.id).status = 'completed'
        change()
      }
      state.status = 'completed'
    } catch (err) {
      const e = toPgkeepError(err)
      const current = state.members.find(s => s.status === 'running')
      if (current !== undefined) Object.assign(current, { status: e.code === 'CANCELLED' ? 'cancelled' : 'failed', error: { code: e.code, message: e.message } })
      state.status = e.code === 'CANCELLED' || cancelled ? 'cancelled' : 'failed'
      state.error = { code: e.code, message: e.message }
    }
    change()
    return { ...state }
  }
  const done = run()
  return {
    state: () => ({ ...state, members: state.members.map(m => ({ ...m })) }),
    done,
    cancel: async () => {
      cancelled = true
      await running?.cancel()
      return await done
    },
  }
}
