import { Type, type Static } from 'typebox'

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'
export const TOKEN_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'

/** viewer < operator < admin: each role can do everything the lower ones can. */
export const Role = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')])
export type Role = Static<typeof Role>
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin']

export const User = Type.Object({
  username: Type.String(),
  role: Role,
})
export type User = Static<typeof User>

export const LoginRequest = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
}, { additionalProperties: false })
export type LoginRequest = Static<typeof LoginRequest>

export const LoginReply = Type.Object({
  /** bearer token for scripts; the same JWT is also set as an HttpOnly cookie */
  token: Type.String(),
  user: User,
})
export type LoginReply = Static<typeof LoginReply>

export const LogoutReply = Type.Object({ ok: Type.Boolean() })
export type LogoutReply = Static<typeof LogoutReply>

/** A long-lived API token as listed (the token itself is shown once, at creation). */
export const TokenInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
})
export type TokenInfo = Static<typeof TokenInfo>
