import { BACKUP_NAME_PATTERN, type BackupFormat, type Compression } from '../../schemas/backup.ts'
import { InvalidInputError } from '../errors.ts'

const NAME_RE = new RegExp(BACKUP_NAME_PATTERN)
const MAX_NAME_LENGTH = 100

const BASE_EXTENSION: Record<BackupFormat, string> = { custom: 'dump', plain: 'sql', tar: 'tar', directory: 'dir' }
const COMPRESSION_SUFFIX: Record<Compression, string> = { zstd: '.zst', gzip: '.gz', none: '' }

export function fileExtension (format: BackupFormat, compression: Compression): string {
  // a directory dump is compressed by pg_dump file by file, so its name never carries a codec
  if (format === 'directory') return BASE_EXTENSION.directory
  return BASE_EXTENSION[format] + COMPRESSION_SUFFIX[compression]
}

/** 2026-11-25T12:21:36.123Z -> 20261125T122136Z: sortable, and free of ':' which some filesystems reject. */
function compactUtc (at: Date): string {
  return at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')
}

function shortId (id: string): string {
  const hex = id.replace(/-/g, '').toLowerCase()
  if (!/^[0-9a-f]{8,}$/.test(hex)) throw new InvalidInputError(`backup id "${id}" is not a UUID`, 'id')
  // a UUIDv7 starts with the timestamp, so the random tail is what tells two backups of one second apart
  return hex.slice(-8)
}

function sanitize (part: string): string {
  return part.replace(/[^A-Za-z0-9_-]/g, '_')
}

export function generateBackupName (target: string, database: string, at: Date, id: string, ext: string): string {
  const stamp = compactUtc(at)
  const tail = `-${stamp}-${shortId(id)}.${ext}`
  let head = sanitize(target)
  let db = sanitize(database)
  // the name must fit BACKUP_NAME_PATTERN (100 chars): the database gives way first, then the target
  const room = MAX_NAME_LENGTH - tail.length - 1
  if (head.length + db.length > room) db = db.slice(0, Math.max(1, room - head.length))
  if (head.length + db.length > room) head = head.slice(0, Math.max(1, room - db.length))
  // a sanitized name may start with '_' or '-', which the pattern forbids as a first character
  if (!/^[A-Za-z0-9]/.test(head)) head = `t${head.slice(1)}`
  const name = `${head}-${db}${tail}`
  if (!NAME_RE.test(name)) throw new InvalidInputError(`cannot build a backup name from extension "${ext}"`, 'name')
  return name
}

/**
 * The name a backup is stored under: the user's (with the extension added) or a generated one.
 * The user's name becomes a path inside the backups dir, so anything that could leave it is refused.
 */
export function finalName (userName: string | undefined, target: string, database: string, at: Date, id: string, ext: string): string {
  if (userName === undefined) return generateBackupName(target, database, at, id, ext)
  const invalid = (why: string): InvalidInputError =>
    new InvalidInputError(`invalid backup name "${userName.slice(0, 120)}": ${why}`, 'name')
  if (userName.includes('/') || userName.includes('..')) throw invalid("it must not contain '/' or '..'")
  if (!NAME_RE.test(userName)) throw invalid('use 1-100 letters, digits, dots, dashes or underscores, starting with a letter or digit')
  const name = userName.endsWith(`.${ext}`) ? userName : `${userName}.${ext}`
  if (!NAME_RE.test(name)) throw invalid(`with the extension ".${ext}" it exceeds ${MAX_NAME_LENGTH} characters`)
  return name
}
