import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { join } from 'node:path'
import { ROLES, USERNAME_PATTERN, type Role, type User } from '../../schemas/auth.ts'
import { InvalidInputError, NotFoundError, PgkeepError } from '../errors.ts'
import { readJson, SerialQueue, writeJsonAtomic } from './secure-file.ts'

/** A user as the users file keeps it. */
export interface StoredUser {
  username: string
  role: Role
  /** scrypt$N$r$p$salt(base64)$hash(base64) */
  passwordHash: string
  createdAt: string
  updatedAt: string
  /** random, new on every add: a name removed and added again is a different user to old sessions */
  id?: string
  /** bumped on password and role changes; sessions carry the value they were issued under */
  generation?: number
}
export interface UsersFile { version: 1, users: StoredUser[] }

const SCRYPT = { N: 16384, r: 8, p: 1, keyLen: 64 }
const usernameRe = new RegExp(USERNAME_PATTERN)

function scryptAsync (password: string, salt: Buffer, keyLen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keyLen, opts, (err, key) => err ? reject(err) : resolve(key)))
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scryptAsync(password, salt, SCRYPT.keyLen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p })
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$')
}

export async function checkPassword (password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$')
  if (kind !== 'scrypt' || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64')
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) })
  return timingSafeEqual(key, expected)
}

/** A user as a session sees it: `sessionStamp` changes whenever that user's sessions must end. */
export interface SessionUser extends User { sessionStamp: string }

export function sessionStampOf (u: Pick<StoredUser, 'id' | 'createdAt' | 'generation'>): string {
  // users written before stamps existed have no id; their creation time stands in until the next change
  return `${u.id ?? `legacy-${u.createdAt}`}.${u.generation ?? 0}`
}

/** Every change that must end the user's sessions goes through here. */
function bumpGeneration (u: StoredUser): void {
  u.id ??= randomUUID()
  u.generation = (u.generation ?? 0) + 1
  u.updatedAt = new Date().toISOString()
}

/** A hash to compare against when the user does not exist, so timing does not reveal which usernames exist. */
let dummyHash: Promise<string> | undefined

/** The same work as checking a real password, for a username that does not exist. */
export async function checkAgainstNobody (password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'))
  await checkPassword(password, await dummyHash)
}

export function refuseNoAdminLeft (after: Pick<StoredUser, 'role'>[], what: string): void {
  if (!after.some(u => u.role === 'admin')) throw new PgkeepError('CONFLICT', `cannot ${what}: no admin would be left; add another admin first`)
}

/** What a new user must look like, whichever store keeps it. */
export function checkNewUser (username: string, role: Role, password: string): void {
  if (!usernameRe.test(username)) throw new InvalidInputError(`invalid username "${username}": use letters, digits, . _ @ - (max 64)`, 'username')
  if (!ROLES.includes(role)) throw new InvalidInputError(`invalid role "${role}": use viewer, operator or admin`, 'role')
  validatePassword(password)
}

export function validatePassword (password: string): void {
  if (password.length < 8) throw new InvalidInputError('password must be at least 8 characters', 'password')
  if (password.length > 1024) throw new InvalidInputError('password must be at most 1024 characters', 'password')
}

/**
 * The dashboard/API users, wherever they are kept: the users file (UsersStore) or the shared catalog
 * (PgUsersStore). Passwords go in, never out: no method returns a hash.
 */
export interface UserAccounts {
  list (): Promise<User[]>
  isEmpty (): Promise<boolean>
  get (username: string): Promise<User | undefined>
  /** The user with their current session stamp: a session issued under another stamp is over. */
  sessionUser (username: string): Promise<SessionUser | undefined>
  add (username: string, role: Role, password: string): Promise<User>
  /** keepAnAdmin (the dashboard): refuse to remove the last admin, which would leave only the CLI to recover. */
  remove (username: string, opts?: { keepAnAdmin?: boolean }): Promise<void>
  setPassword (username: string, password: string): Promise<void>
  setRole (username: string, role: Role, opts?: { keepAnAdmin?: boolean }): Promise<void>
  /** The user when the password matches; undefined otherwise (same work either way). */
  verifyPassword (username: string, password: string): Promise<SessionUser | undefined>
}

/**
 * The users file `<backupDir>/.pgkeep/users.json` (0600). Re-read on every call, so a user added with the
 * CLI while the server runs can log in at once.
 */
export class UsersStore implements UserAccounts {
  readonly path: string
  readonly #queue = new SerialQueue()

  constructor (backupDir: string) {
    this.path = join(backupDir, '.pgkeep', 'users.json')
  }

  async #load (): Promise<UsersFile> {
    return (await readJson<UsersFile>(this.path)) ?? { version: 1, users: [] }
  }

  async list (): Promise<User[]> {
    return (await this.#load()).users.map(u => ({ username: u.username, role: u.role }))
  }

  async isEmpty (): Promise<boolean> {
    return (await this.#load()).users.length === 0
  }

  async get (username: string): Promise<User | undefined> {
    const u = (await this.#load()).users.find(x => x.username === username)
    return u && { username: u.username, role: u.role }
  }

  /** The user with their current session stamp: a session issued under another stamp is over. */
  async sessionUser (username: string): Promise<SessionUser | undefined> {
    const u = (await this.#load()).users.find(x => x.username === username)
    return u && { username: u.username, role: u.role, sessionStamp: sessionStampOf(u) }
  }

  async add (username: string, role: Role, password: string): Promise<User> {
    checkNewUser(username, role, password)
    const passwordHash = await hashPassword(password)
    return await this.#queue.run(async () => {
      const file = await this.#load()
      if (file.users.some(u => u.username === username)) throw new PgkeepError('CONFLICT', `user "${username}" already exists`)
      const now = new Date().toISOString()
      file.users.push({ username, role, passwordHash, createdAt: now, updatedAt: now, id: randomUUID(), generation: 0 })
      await writeJsonAtomic(this.path, file)
      return { username, role }
    })
  }

  /** keepAnAdmin (the dashboard): refuse to remove the last admin, which would leave only the CLI to recover. */
  async remove (username: string, opts: { keepAnAdmin?: boolean } = {}): Promise<void> {
    await this.#queue.run(async () => {
      const file = await this.#load()
      const next = file.users.filter(u => u.username !== username)
      if (next.length === file.users.length) throw new NotFoundError(`user "${username}"`)
      if (opts.keepAnAdmin) refuseNoAdminLeft(next, `remove "${username}"`)
      await writeJsonAtomic(this.path, { ...file, users: next })
    })
  }

  async setPassword (username: string, password: string): Promise<void> {
    validatePassword(password)
    const passwordHash = await hashPassword(password)
    await this.#queue.run(async () => {
      const file = await this.#load()
      const u = file.users.find(x => x.username === username)
      if (!u) throw new NotFoundError(`user "${username}"`)
      u.passwordHash = passwordHash
      bumpGeneration(u)
      await writeJsonAtomic(this.path, file)
    })
  }

  async setRole (username: string, role: Role, opts: { keepAnAdmin?: boolean } = {}): Promise<void> {
    await this.#queue.run(async () => {
      const file = await this.#load()
      const u = file.users.find(x => x.username === username)
      if (!u) throw new NotFoundError(`user "${username}"`)
      if (opts.keepAnAdmin) refuseNoAdminLeft(file.users.map(x => x === u ? { ...x, role } : x), `make "${username}" ${role}`)
      u.role = role
      bumpGeneration(u)
      await writeJsonAtomic(this.path, file)
    })
  }

  /** The user when the password matches; undefined otherwise (same work either way). */
  async verifyPassword (username: string, password: string): Promise<SessionUser | undefined> {
    const u = (await this.#load()).users.find(x => x.username === username)
    if (!u) {
      await checkAgainstNobody(password)
      return undefined
    }
    return (await checkPassword(password, u.passwordHash)) ? { username: u.username, role: u.role, sessionStamp: sessionStampOf(u) } : undefined
  }
}
