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

/** Admin screens (users and API tokens over HTTP, as `pgkeep user` / `pgkeep token` do locally). */
export const UserList = Type.Object({ items: Type.Array(User) })
export type UserList = Static<typeof UserList>

export const UsernameParams = Type.Object({ username: Type.String({ pattern: USERNAME_PATTERN }) }, { additionalProperties: false })

export const UserCreate = Type.Object({
  username: Type.String({ pattern: USERNAME_PATTERN }),
  role: Role,
  password: Type.String({ minLength: 8, maxLength: 1024 }),
}, { additionalProperties: false })
export type UserCreate = Static<typeof UserCreate>

export const RoleChange = Type.Object({ role: Role }, { additionalProperties: false })
export type RoleChange = Static<typeof RoleChange>

export const PasswordReset = Type.Object({ password: Type.String({ minLength: 8, maxLength: 1024 }) }, { additionalProperties: false })
export type PasswordReset = Static<typeof PasswordReset>

export const TokenList = Type.Object({ items: Type.Array(TokenInfo) })
export type TokenList = Static<typeof TokenList>

export const TokenCreate = Type.Object({
  name: Type.String({ pattern: TOKEN_NAME_PATTERN }),
  role: Role,
  /** lifetime: "30d", "12h", "90m"; none = until revoked */
  expires: Type.Optional(Type.String({ pattern: '^\\d+[smhdw]?$', maxLength: 12 })),
}, { additionalProperties: false })
export type TokenCreate = Static<typeof TokenCreate>

export const TokenCreated = Type.Object({
  /** the token itself: shown this once, never stored */
  token: Type.String(),
  info: TokenInfo,
})
export type TokenCreated = Static<typeof TokenCreated>

export const TokenParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false })
