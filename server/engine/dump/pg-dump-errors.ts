import { PgkeepError } from '../../errors.ts'

/** A pg_dump (or other libpq client) failure, with whether running it again could help. */
export class PgFailure extends PgkeepError {
  readonly retryable: boolean

  constructor (code: ConstructorParameters<typeof PgkeepError>[0], message: string, retryable: boolean, exitCode: number | null, facts?: Record<string, unknown>) {
    super(code, message, { details: { exitCode, retryable, ...facts } })
    this.name = 'PgFailure'
    this.retryable = retryable
  }
}

/**
 * The password lives only in the passfile, but a connection string echoed back by libpq or a
 * server message could still carry one: scrub anything that looks like a credential.
 */
export function scrubSecrets (text: string): string {
  return text
    .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1***')
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi, '$1***@')
    // SQL quoted by a message (another session's query): ALTER ROLE ... PASSWORD 'x'
    .replace(/(\bPASSWORD\s+)'(?:[^']|'')*'/gi, "$1'***'")
}

/**
 * --verbose progress lines ("pg_dump: dumping contents of table ...") carry user-chosen names, so
 * they must never be read as errors: only error/detail/hint lines, libpq continuations and lines
 * from other sources count.
 */
const VERBOSE_INFO = /^pg_dump: (?!error:|detail:|hint:|warning:|fatal:)/i

function diagnosticLines (stderrTail: string[]): string[] {
  return stderrTail.map(l => l.trimEnd()).filter(l => l.trim() !== '' && !VERBOSE_INFO.test(l))
}

function findLast (lines: string[], test: (l: string) => boolean): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) if (test(lines[i])) return lines[i]
  return undefined
}

/** The line a user needs to see: the last error line, else the last line that says anything. */
export function lastMeaningfulLine (stderrTail: string[]): string | undefined {
  const lines = diagnosticLines(stderrTail)
  return findLast(lines, l => /error:|FATAL|ERROR|failed/.test(l)) ??
    findLast(lines, l => !/^pg_dump: (?:detail|hint): |^\s+Is the server running/i.test(l)) ??
    findLast(stderrTail, l => l.trim() !== '')
}

interface Rule {
  test: RegExp
  code: ConstructorParameters<typeof PgkeepError>[0]
  retryable: boolean
  message: (line: string, match: RegExpExecArray) => string
  /** facts for the caller to act on (e.g. the table whose lock was not granted) */
  details?: (match: RegExpExecArray) => Record<string, unknown>
}

// Order matters: a refused login is also "connection ... failed", and must not be retried.
const RULES: Rule[] = [
  {
    // --lock-wait-timeout is a statement timeout on pg_dump's LOCK TABLE: the detail line names the table
    test: /canceling statement due to (?:statement|lock) timeout[\s\S]*?Query was: LOCK TABLE (.+) IN ACCESS SHARE MODE/i,
    code: 'LOCK_TIMEOUT',
    retryable: false,
    message: (_line, m) => `pg_dump could not lock ${m[1]} within its lock wait timeout: another session holds a conflicting lock on it`,
    details: m => ({ relation: m[1] }),
  },
  {
    test: /password authentication failed|no password supplied|\b28P01\b|authentication failed for user/i,
    code: 'PG_AUTH_FAILED',
    retryable: false,
    message: line => `PostgreSQL rejected the credentials; check the target's user and password (${line})`,
  },
  {
    test: /role "((?:[^"]|"")*)" does not exist/i,
    code: 'PG_AUTH_FAILED',
    retryable: false,
    message: (_line, m) => `PostgreSQL has no role "${m[1]}"; check the target's user`,
  },
  {
    test: /aborting because of server version mismatch|server version: .*; pg_dump version/i,
    code: 'PG_VERSION_MISMATCH',
    retryable: false,
    message: line => `pg_dump is older than the server; install a pg_dump at least as new as the server (${line})`,
  },
  {
    test: /database "((?:[^"]|"")*)" does not exist/i,
    code: 'PG_CONNECTION_FAILED',
    retryable: false,
    message: (_line, m) => `database "${m[1]}" does not exist on the target server; check the target's database name`,
  },
  {
    test: /No space left on device|Disk quota exceeded/i,
    code: 'DISK_FULL',
    retryable: false,
    message: line => `no space left while pg_dump was writing; free space on the backups volume (${line})`,
  },
  {
    test: /could not connect|Connection refused|the database system is (?:starting up|shutting down|in recovery mode)|timeout expired|too many clients|could not translate host name|server closed the connection unexpectedly|Connection timed out|No route to host|remaining connection slots are reserved/i,
    code: 'PG_CONNECTION_FAILED',
    retryable: true,
    message: line => `could not reach PostgreSQL; it may be down or overloaded, the dump can be retried (${line})`,
  },
]

export function classifyPgFailure (stderrTail: string[], exitCode: number | null, signal?: NodeJS.Signals | null): PgFailure {
  const text = diagnosticLines(stderrTail).join('\n')
  const line = scrubSecrets(lastMeaningfulLine(stderrTail) ?? '')
  for (const rule of RULES) {
    const m = rule.test.exec(text)
    if (m) return new PgFailure(rule.code, scrubSecrets(rule.message(line, m)), rule.retryable, exitCode, rule.details?.(m))
  }
  const how = signal ? `was killed by ${signal}` : exitCode === null ? 'was killed' : `exited with code ${exitCode}`
  return new PgFailure('PG_DUMP_FAILED', line ? `pg_dump ${how}: ${line}` : `pg_dump ${how} without an error message`, false, exitCode)
}
