import t from 'tap'
import { BACKUP_NAME_PATTERN } from '../../schemas/backup.ts'
import { fileExtension, finalName, generateBackupName } from '../../server/engine/naming.ts'
import { PgkeepError } from '../../server/errors.ts'

const ID = '019abc12-3456-7def-8123-456789abcdef'
const AT = new Date('2026-11-25T12:21:36.789Z')
const namePattern = new RegExp(BACKUP_NAME_PATTERN)

t.test('extensions follow the format and add the codec only to single-file formats', async t => {
  t.equal(fileExtension('custom', 'none'), 'dump')
  t.equal(fileExtension('custom', 'zstd'), 'dump.zst')
  t.equal(fileExtension('plain', 'gzip'), 'sql.gz')
  t.equal(fileExtension('plain', 'none'), 'sql')
  t.equal(fileExtension('tar', 'zstd'), 'tar.zst')
  t.equal(fileExtension('directory', 'zstd'), 'dir')
  t.equal(fileExtension('directory', 'gzip'), 'dir')
  t.equal(fileExtension('directory', 'none'), 'dir')
})

t.test('a generated name carries target, database, UTC time and the last 8 hex digits of the id', async t => {
  t.equal(generateBackupName('default', 'app', AT, ID, 'dump.zst'), 'default-app-20261125T122136Z-89abcdef.dump.zst')
})

t.test('a database name with spaces, dots or unicode is sanitized into the name pattern', async t => {
  const name = generateBackupName('prod', 'Ünïcode db.v2/x', AT, ID, 'sql')
  t.equal(name, 'prod-_n_code_db_v2_x-20261125T122136Z-89abcdef.sql')
  t.match(name, namePattern)
})

t.test('very long target and database names are truncated so the name still fits 100 characters', async t => {
  const name = generateBackupName('t'.repeat(63), 'd'.repeat(63), AT, ID, 'dump.zst')
  t.ok(name.length <= 100, `length ${name.length}`)
  t.match(name, namePattern)
  t.ok(name.endsWith('-20261125T122136Z-89abcdef.dump.zst'))
  t.ok(name.startsWith('t'.repeat(63) + '-d'))
})

t.test('a user-given name gets the extension unless it already has it', async t => {
  t.equal(finalName('nightly', 'default', 'app', AT, ID, 'dump.zst'), 'nightly.dump.zst')
  t.equal(finalName('nightly.dump.zst', 'default', 'app', AT, ID, 'dump.zst'), 'nightly.dump.zst')
  t.equal(finalName('before-migration_2', 'default', 'app', AT, ID, 'dir'), 'before-migration_2.dir')
})

t.test('without a user name the generated one is used', async t => {
  t.equal(finalName(undefined, 'default', 'app', AT, ID, 'sql'), 'default-app-20261125T122136Z-89abcdef.sql')
})

t.test('user names that could escape the backups dir or break the pattern are rejected on the name field', async t => {
  for (const bad of ['../etc/passwd', 'a/b', 'a..b', '.hidden', '', '-flag', 'sp ace', 'x'.repeat(101), 'x'.repeat(95), 'tab\tname']) {
    const err = t.throws(() => finalName(bad, 'default', 'app', AT, ID, 'dump.zst'), `rejects ${JSON.stringify(bad)}`) as PgkeepError
    t.equal(err.code, 'INVALID_INPUT')
    t.same(err.details, { field: 'name' })
  }
})
