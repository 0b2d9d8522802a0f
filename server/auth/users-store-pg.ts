import { randomUUID } from 'node:crypto'
import type { Role, User } from '../../schemas/auth.ts'
import type { CatalogDb, Queryable } from '../catalog/catalog-db.ts'
import { NotFoundError, PgkeepError } from '../errors.ts'
import {
  checkAgainstNobody, checkNewUser, checkPassword, hashPassword, refuseNoAdminLeft, validatePassword,
  type SessionUser, type UserAccounts,
} from './users-store.ts'

interface UserRow { username: string, role: Role, password_hash: string, stamp_id: string, generation: number }

// every change to the users takes this lock first: "is there still an admin after this?" is then asked of a table
// no other instance is changing, so two instances demoting the last two admins cannot both succeed
const USERS_LOCK = 'pgkeep.users'
const UNIQUE_VIOLATION = '23505'

const stampOf = (u: Pick<UserRow, 'stamp_id' | 'generation'>): string => `${u.stamp_id}.${u.generation}`

/**
 * The users in the shared catalog (pgkeep.users): the same rules as the users file (UsersStore), read afresh on
 * every call, so a user added, changed or removed on one instance counts on all of them at once.
 */
export class PgUsersStore implements UserAccounts {
  constructor (private readonly db: CatalogDb) {}

  async list (): Promise<User[]> {
    const { rows } = await this.db.query<UserRow>('SELECT username, role FROM pgkeep.users ORDER BY seq')
    return rows.map(u => ({ username: u.username, role: u.role }))
  }

  async isEmpty (): Promise<boolean> {
    const { rows } = await this.db.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM pgkeep.users) AS any')
    return !rows[0].any
  }

  async get (username: string): Promise<User | undefined> {
    const u = await this.#row(username)
    return u && { username: u.username, role: u.role }
  }

  async sessionUser (username: string): Promise<SessionUser | undefined> {
    const u = await this.#row(username)
    return u && { username: u.username, role: u.role, sessionStamp: stampOf(u) }
  }

  async add (username: string, role: Role, password: string): Promise<User> {
    checkNewUser(username, role, password)
    const passwordHash = await hashPassword(password)
    await this.#change(async client => {
      try {
        await client.query(`INSERT INTO pgkeep.users (username, role, password_hash, stamp_id, generation, created_at, updated_at)
          VALUES ($1, $2, $3, $4, 0, pg_catalog.now(), pg_catalog.now())`, [username, role, passwordHash, randomUUID()])
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new PgkeepError('CONFLICT', `user "${username}" already exists`)
        throw err
      }
    })
    return { username, role }
  }

  async remove (username: string, opts: { keepAnAdmin?: boolean } = {}): Promise<void> {
    await this.#change(async client => {
      const { rows } = await client.query<{ username: string, role: Role }>('SELECT username, role FROM pgkeep.users')
      const next = rows.filter(u => u.username !== username)
      if (next.length === rows.length) throw new NotFoundError(`user "${username}"`)
      if (opts.keepAnAdmin) refuseNoAdminLeft(next, `remove "${username}"`)
      await client.query('DELETE FROM pgkeep.users WHERE username = $1', [username])
    })
  }

  async setPassword (username: string, password: string): Promise<void> {
    validatePassword(password)
    const passwordHash = await hashPassword(password)
    await this.#change(async client => {
      const { rowCount } = await client.query(`UPDATE pgkeep.users SET password_hash = $2, generation = generation + 1, updated_at = pg_catalog.now()
        WHERE username = $1`, [username, passwordHash])
      if (rowCount === 0) throw new NotFoundError(`user "${username}"`)
    })
  }

  async setRole (username: string, role: Role, opts: { keepAnAdmin?: boolean } = {}): Promise<void> {
    await this.#change(async client => {
      const { rows } = await client.query<{ username: string, role: Role }>('SELECT username, role FROM pgkeep.users')
      const u = rows.find(x => x.username === username)
      if (!u) throw new NotFoundError(`user "${username}"`)
      if (opts.keepAnAdmin) refuseNoAdminLeft(rows.map(x => x === u ? { ...x, role } : x), `make "${username}" ${role}`)
      await client.query(`UPDATE pgkeep.users SET role = $2, generation = generation + 1, updated_at = pg_catalog.now()
        WHERE username = $1`, [username, role])
    })
  }

  async verifyPassword (username: string, password: string): Promise<SessionUser | undefined> {
    const u = await this.#row(username)
    if (!u) {
      await checkAgainstNobody(password)
      return undefined
    }
    return (await checkPassword(password, u.password_hash)) ? { username: u.username, role: u.role, sessionStamp: stampOf(u) } : undefined
  }

  async #row (username: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query<UserRow>('SELECT username, role, password_hash, stamp_id, generation FROM pgkeep.users WHERE username = $1', [username])
    return rows[0]
  }

  /** One change, in a transaction that holds the users lock: changes from every instance happen one after the other. */
  async #change (fn: (client: Queryable) => Promise<void>): Promise<void> {
    await this.db.transaction(async client => {
      await client.query('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))', [USERS_LOCK])
      await fn(client)
    })
  }
}
