import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { createSigner, createVerifier } from 'fast-jwt'
import { ROLES, TOKEN_NAME_PATTERN, type Role, type TokenInfo } from '../../schemas/auth.ts'
import { InvalidInputError, NotFoundError, PgkeepError } from '../errors.ts'
import { readJson, SerialQueue, writeJsonAtomic } from './secure-file.ts'
import type { UserAccounts } from './users-store.ts'

/** Claims pgkeep puts in every JWT it issues. */
export interface TokenClaims {
  sub: string
  jti: string
  /** session = login (role read from the users file at each request); api = long-lived token with its own role */
  kind: 'session' | 'api'
  role?: Role
  /** sessions only: the user's session stamp at login (UsersStore); a password or role change, or removal, ends them */
  gen?: string
  exp?: number
  iat?: number
}

export interface Principal { username: string, role: Role, kind: 'session' | 'api', jti: string, exp?: number }

export interface TokensFile {
  version: 1
  tokens: TokenInfo[]
  /** logged-out sessions, kept until their natural expiry */
  revokedSessions: { jti: string, exp: number }[]
}

export const SESSION_TTL_SECONDS = 12 * 3600
const tokenNameRe = new RegExp(TOKEN_NAME_PATTERN)

/** "30d", "12h", "90m", "3600s" or plain seconds. */
export function parseDuration (text: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(text.trim())
  if (!m) throw new InvalidInputError(`invalid duration "${text}": use e.g. 30d, 12h, 90m`, 'expires')
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w']
  const seconds = Number(m[1]) * unit
  if (seconds <= 0) throw new InvalidInputError('duration must be positive', 'expires')
  return seconds
}

/** HS256 signing, the same algorithm and library (fast-jwt) @fastify/jwt verifies with. */
export function signJwt (secret: string, claims: TokenClaims, expiresInSeconds?: number): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256', ...(expiresInSeconds ? { expiresIn: expiresInSeconds * 1000 } : {}) })
  return sign({ ...claims })
}

export function verifyJwt (secret: string, token: string): TokenClaims {
  return createVerifier({ key: secret, algorithms: ['HS256'] })(token) as TokenClaims
}

export interface NewToken { name: string, role: Role, createdBy: string, expiresInSeconds?: number }

/** Checks a new API token's name and role and signs it: the JWT (shown once, never stored) and its record. */
export function issueToken (secret: string, opts: NewToken): { token: string, info: TokenInfo } {
  if (!tokenNameRe.test(opts.name)) throw new InvalidInputError(`invalid token name "${opts.name}": use letters, digits, . _ - (max 64)`, 'name')
  if (!ROLES.includes(opts.role)) throw new InvalidInputError(`invalid role "${opts.role}": use viewer, operator or admin`, 'role')
  const now = new Date()
  const info: TokenInfo = {
    id: randomUUID(),
    name: opts.name,
    role: opts.role,
    createdAt: now.toISOString(),
    createdBy: opts.createdBy,
    ...(opts.expiresInSeconds ? { expiresAt: new Date(now.getTime() + opts.expiresInSeconds * 1000).toISOString() } : {}),
  }
  const token = signJwt(secret, { sub: `token:${opts.name}`, jti: info.id, kind: 'api', role: opts.role }, opts.expiresInSeconds)
  return { token, info }
}

export const tokenNameTaken = (name: string): PgkeepError => new PgkeepError('CONFLICT', `a token named "${name}" already exists; revoke it first`)

/**
 * API tokens and logged-out sessions, wherever they are kept: the tokens file (TokenStore) or the shared catalog
 * (PgTokenStore). Only metadata is kept: a token is a signed JWT shown once; revoking marks its id (the jti).
 */
export interface ApiTokens {
  list (): Promise<TokenInfo[]>
  get (id: string): Promise<TokenInfo | undefined>
  /** Creates an API token; returns the JWT (to be shown once) and its record. */
  create (secret: string, opts: NewToken): Promise<{ token: string, info: TokenInfo }>
  /** Revokes by id (or by name, for the CLI's convenience). */
  revoke (idOrName: string): Promise<TokenInfo>
  /** Logout: the session's id is refused until the session would have expired anyway. */
  revokeSession (jti: string, exp: number): Promise<void>
  /** Whether verified claims still grant access now, and as whom (see TokenStore.principalFor). */
  principalFor (claims: TokenClaims, users: UserAccounts): Promise<Principal | undefined>
}

/**
 * API tokens and the revocation list at `<backupDir>/.pgkeep/tokens.json` (0600). Only the metadata is
 * stored: a token is a signed JWT shown once; revoking marks its id (the JWT's jti).
 */
export class TokenStore implements ApiTokens {
  readonly path: string
  readonly #queue = new SerialQueue()

  constructor (backupDir: string) {
    this.path = join(backupDir, '.pgkeep', 'tokens.json')
  }

  async #load (): Promise<TokensFile> {
    return (await readJson<TokensFile>(this.path)) ?? { version: 1, tokens: [], revokedSessions: [] }
  }

  async list (): Promise<TokenInfo[]> {
    return (await this.#load()).tokens
  }

  async get (id: string): Promise<TokenInfo | undefined> {
    return (await this.#load()).tokens.find(t => t.id === id)
  }

  /** Creates an API token; returns the JWT (to be shown once) and its record. */
  async create (secret: string, opts: NewToken): Promise<{ token: string, info: TokenInfo }> {
    const { token, info } = issueToken(secret, opts)
    await this.#queue.run(async () => {
      const file = await this.#load()
      if (file.tokens.some(t => t.name === opts.name && !t.revokedAt)) throw tokenNameTaken(opts.name)
      file.tokens.push(info)
      await writeJsonAtomic(this.path, file)
    })
    return { token, info }
  }

  /** Revokes by id (or by name, for the CLI's convenience). */
  async revoke (idOrName: string): Promise<TokenInfo> {
    return await this.#queue.run(async () => {
      const file = await this.#load()
      const t = file.tokens.find(x => x.id === idOrName) ?? file.tokens.find(x => x.name === idOrName && !x.revokedAt)
      if (!t) throw new NotFoundError(`token "${idOrName}"`)
      t.revokedAt ??= new Date().toISOString()
      await writeJsonAtomic(this.path, file)
      return t
    })
  }

  async revokeSession (jti: string, exp: number): Promise<void> {
    await this.#queue.run(async () => {
      const file = await this.#load()
      const nowSec = Date.now() / 1000
      file.revokedSessions = file.revokedSessions.filter(s => s.exp > nowSec && s.jti !== jti)
      file.revokedSessions.push({ jti, exp })
      await writeJsonAtomic(this.path, file)
    })
  }

  /**
   * Decides whether verified claims still grant access: an API token must be known and not revoked; a
   * session must not be logged out, its user must still exist and still carry the stamp the session was issued
   * under (a password or role change, or removal and re-adding, ends it); the role is read fresh.
   */
  async principalFor (claims: TokenClaims, users: UserAccounts): Promise<Principal | undefined> {
    if (typeof claims.jti !== 'string' || typeof claims.sub !== 'string') return undefined
    const file = await this.#load()
    if (claims.kind === 'api') {
      const t = file.tokens.find(x => x.id === claims.jti)
      if (!t || t.revokedAt) return undefined
      return { username: claims.sub, role: t.role, kind: 'api', jti: claims.jti, exp: claims.exp }
    }
    if (claims.kind === 'session') {
      if (file.revokedSessions.some(s => s.jti === claims.jti)) return undefined
      const user = await users.sessionUser(claims.sub)
      if (!user || typeof claims.gen !== 'string' || claims.gen !== user.sessionStamp) return undefined
      return { username: user.username, role: user.role, kind: 'session', jti: claims.jti, exp: claims.exp }
    }
    return undefined
  }
}
