import { splitStatements } from '../restore/database-level.ts'

const IDENT = String.raw`("(?:[^"]|"")*"|[^\s;"]+)`
/** Statements that create or change a role itself; GRANT (memberships) is not one of them. */
const ROLE_HEADS = [
  new RegExp(String.raw`^CREATE ROLE ${IDENT}`, 'i'),
  new RegExp(String.raw`^ALTER ROLE ${IDENT}`, 'i'),
  new RegExp(String.raw`^COMMENT ON ROLE ${IDENT}`, 'i'),
  new RegExp(String.raw`^SECURITY LABEL (?:FOR \S+ )?ON ROLE ${IDENT}`, 'i'),
]

function unquote (ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident
}

/** The role a statement creates or changes, if it is one of those. */
export function roleOf (statement: string): string | undefined {
  for (const re of ROLE_HEADS) {
    const m = re.exec(statement)
    if (m) return unquote(m[1])
  }
  return undefined
}

export interface GlobalsPlan {
  /** to run in order */
  statements: string[]
  /** `role "app" already exists`: each existing role once */
  skipped: string[]
}

/**
 * pg_dumpall --globals-only's script for a server that may already have some of its roles: every statement that
 * creates or changes an existing role (CREATE ROLE, ALTER ROLE ... WITH/SET, COMMENT ON ROLE) is left out, so
 * that role is left exactly as it is (its attributes, its password) and reported; memberships (GRANT) are kept.
 * A tablespace that exists fails its CREATE with duplicate_object, which the caller reports the same way.
 */
export function planGlobals (script: string, existingRoles: ReadonlySet<string>): GlobalsPlan {
  const statements: string[] = []
  const skipped = new Set<string>()
  for (const s of splitStatements(script)) {
    const role = roleOf(s)
    if (role !== undefined && existingRoles.has(role)) {
      skipped.add(`role "${role}" already exists`)
      continue
    }
    statements.push(s)
  }
  return { statements, skipped: [...skipped] }
}
