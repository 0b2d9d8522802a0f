import { InvalidInputError } from '../../errors.ts'

/**
 * A pg_dump -n / -T pattern split at its unquoted dots and turned into the anchored regular
 * expressions pg_dump itself sends to the server (a port of patternToSQLRegex in
 * src/fe_utils/string_utils.c, PostgreSQL 15), so the server's own regex engine decides matches
 * exactly as it does for pg_dump:
 *  - unquoted ASCII letters fold to lower case; "double quotes" keep case and make * ? . literal,
 *    "" inside quotes is one quote;
 *  - * is .*, ? is ., $ is always literal, a bare [] is literal;
 *  - other regular-expression characters outside quotes pass through (pg_dump lets experts write [0-9]).
 * The database part of db.schema[.table] is a literal name that must be the target's database
 * (pg_dump: "cross-database references are not implemented").
 */
export interface NamePattern {
  /** literal database name when the pattern had one more dotted part than its object needs */
  database?: string
  /** regex for the schema, when the pattern was qualified (tables) */
  schema?: string
  /** regex for the object itself (a schema for -n, a relation for -T) */
  name: string
}

const REGEX_SPECIALS = '|*+?()[]{}.^$\\'

function splitPattern (pattern: string): { regexParts: string[], literalParts: string[] } {
  const regexParts: string[] = []
  const literalParts: string[] = []
  let re = ''
  let literal = ''
  let inQuotes = false
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]
    if (ch === '"') {
      if (inQuotes && pattern[i + 1] === '"') {
        re += '"'
        literal += '"'
        i++
      } else {
        inQuotes = !inQuotes
      }
    } else if (!inQuotes && ch >= 'A' && ch <= 'Z') {
      re += ch.toLowerCase()
      literal += ch.toLowerCase()
    } else if (!inQuotes && ch === '*') {
      re += '.*'
      literal += ch
    } else if (!inQuotes && ch === '?') {
      re += '.'
      literal += ch
    } else if (!inQuotes && ch === '.') {
      regexParts.push(re)
      literalParts.push(literal)
      re = ''
      literal = ''
    } else if (ch === '$') {
      re += '\\$'
      literal += ch
    } else {
      if (inQuotes && REGEX_SPECIALS.includes(ch)) re += '\\'
      else if (ch === '[' && pattern[i + 1] === ']') re += '\\'
      re += ch
      literal += ch
    }
  }
  regexParts.push(re)
  literalParts.push(literal)
  return { regexParts, literalParts }
}

const anchored = (re: string): string => `^(${re})$`

function parse (pattern: string, objectParts: 1 | 2, database: string, what: string): NamePattern {
  const { regexParts, literalParts } = splitPattern(pattern)
  if (regexParts.length > objectParts + 1) {
    throw new InvalidInputError(`improper qualified name (too many dotted names) in ${what} pattern "${pattern}"`, what)
  }
  let db: string | undefined
  if (regexParts.length === objectParts + 1) {
    db = literalParts[0]
    regexParts.shift()
    if (db !== database) {
      throw new InvalidInputError(`cross-database references are not supported in ${what} pattern "${pattern}": the target's database is "${database}"`, what)
    }
  }
  const name = anchored(regexParts.at(-1) ?? '')
  return regexParts.length === 2 ? { database: db, schema: anchored(regexParts[0]), name } : { database: db, name }
}

/** A pg_dump -n pattern: schema, or database.schema. */
export function parseSchemaPattern (pattern: string, database: string): NamePattern {
  return parse(pattern, 1, database, 'schemas')
}

/** A pg_dump -T pattern: table, schema.table, or database.schema.table. */
export function parseTablePattern (pattern: string, database: string): NamePattern {
  return parse(pattern, 2, database, 'excludeTables')
}
