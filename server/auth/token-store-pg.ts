import type { Role, TokenInfo } from '../../schemas/auth.ts'
import type { CatalogDb } from '../catalog/catalog-db.ts'
import { NotFoundError } from '../errors.ts'
import { issueToken, tokenNameTaken, type ApiTokens, type NewToken, type Principal, type TokenClaims } from './token-store.ts'
import type { UserAccounts } from './users-store.ts'

interface TokenRow {
  id: string
  name: string
  role: Role
  created_at: Date
  created_by: string
  expires_at: Date | null
  revoked_at: Date | null
}

const COLUMNS = 'id, name, role, created_at, created_by, expires_at, revoked_at'
const UNIQUE_VIOLATION = '23505'

function infoOf (r: TokenRow): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    ...(r.expires_at ? { expiresAt: r.expires_at.toISOString() } : {}),
    ...(r.revoked_at ? { revokedAt: r.revoked_at.toISOString() } : {}),
  }
}

/**
 * API tokens and logged-out sessions in the shared catalog (pgkeep.tokens, pgkeep.revoked_sessions). principalFor
 * reads the catalog on every request, without a cache: a token revoked or a session logged out on one instance is
 * refused by every instance from the moment the change is committed.
 */
export class PgTokenStore implements ApiTokens {
  constructor (private readonly db: CatalogDb) {}

  async list (): Promise<TokenInfo[]> {
    const { rows } = await this.db.query<TokenRow>(`SELECT ${COLUMNS} FROM pgkeep.tokens ORDER BY seq`)
    return rows.map(infoOf)
  }

  async get (id: string): Promise<TokenInfo | undefined> {
    const { rows } = await this.db.query<TokenRow>(`SELECT ${COLUMNS} FROM pgkeep.tokens WHERE id = $1`, [id])
    return rows[0] && infoOf(rows[0])
  }

  async create (secret: string, opts: NewToken): Promise<{ token: string, info: TokenInfo }> {
    const { token, info } = issueToken(secret, opts)
    try {
      await this.db.query(`INSERT INTO pgkeep.tokens (id, name, role, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
        [info.id, info.name, info.role, info.createdAt, info.createdBy, info.expiresAt ?? null])
    } catch (err) {
      // the partial unique index: one live token per name, whichever instance created the other
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw tokenNameTaken(opts.name)
      throw err
    }
    return { token, info }
  }

  async revoke (idOrName: string): Promise<TokenInfo> {
    // by id first (a revoked token's id still answers, keeping its first revocation time), else the live one of that name
    const { rows } = await this.db.query<TokenRow>(`UPDATE pgkeep.tokens SET revoked_at = coalesce(revoked_at, pg_catalog.now())
      WHERE id = coalesce((SELECT id FROM pgkeep.tokens WHERE id = $1), (SELECT id FROM pgkeep.tokens WHERE name = $1 AND revoked_at IS NULL))
      RETURNING ${COLUMNS}`, [idOrName])
    if (rows.length === 0) throw new NotFoundError(`token "${idOrName}"`)
    return infoOf(rows[0])
  }

  async revokeSession (jti: string, exp: number): Promise<void> {
    await this.db.transaction(async client => {
      await client.query('DELETE FROM pgkeep.revoked_sessions WHERE expires_at <= pg_catalog.now()')
      await client.query(`INSERT INTO pgkeep.revoked_sessions (jti, expires_at) VALUES ($1, pg_catalog.to_timestamp($2))
        ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at`, [jti, exp])
    })
  }

  async principalFor (claims: TokenClaims, users: UserAccounts): Promise<Principal | undefined> {
    if (typeof claims.jti !== 'string' || typeof claims.sub !== 'string') return undefined
    if (claims.kind === 'api') {
      const { rows } = await this.db.query<{ role: Role }>('SELECT role FROM pgkeep.tokens WHERE id = $1 AND revoked_at IS NULL', [claims.jti])
      if (rows.length === 0) return undefined
      return { username: claims.sub, role: rows[0].role, kind: 'api', jti: claims.jti, exp: claims.exp }
    }
    if (claims.kind === 'session') {
      const { rows } = await this.db.query('SELECT 1 FROM pgkeep.revoked_sessions WHERE jti = $1', [claims.jti])
      if (rows.length > 0) return undefined
      const user = await users.sessionUser(claims.sub)
      if (!user || typeof claims.gen !== 'string' || claims.gen !== user.sessionStamp) return undefined
      return { username: user.username, role: user.role, kind: 'session', jti: claims.jti, exp: claims.exp }
    }
    return undefined
  }
}
