import t from 'tap'
import { Compile } from 'typebox/compile'
import { CreateBackupRequest } from '../../schemas/backup.ts'
import { buildCreateRequest, defaultForm, fieldOfServerError, type CreateForm } from '../../client/src/lib/validation.ts'

const serverCheck = Compile(CreateBackupRequest)
const form = (over: Partial<CreateForm>): CreateForm => ({ ...defaultForm(), ...over })

t.test('a valid form becomes a request the server schema accepts', async t => {
  const { request, errors } = buildCreateRequest(form({
    target: 'default', name: 'nightly.v1', compression: 'gzip', level: '9', format: 'directory', jobs: '4',
    schemas: 'public\n  sales  \n', excludeTables: 'public.audit_*',
  }))
  t.same(errors, {})
  t.same(request, { target: 'default', name: 'nightly.v1', format: 'directory', compression: 'gzip', level: 9, jobs: 4, schemas: ['public', 'sales'], excludeTables: ['public.audit_*'] })
  t.ok(serverCheck.Check(request), 'the server schema agrees')
})

t.test('empty optional fields are left out, not sent as empty strings', async t => {
  const { request } = buildCreateRequest(defaultForm())
  t.same(request, { format: 'custom', compression: 'zstd' })
  t.ok(serverCheck.Check(request))
})

t.test('each rule the server enforces is caught on its own field before submit', async t => {
  const cases: [Partial<CreateForm>, keyof CreateForm][] = [
    [{ name: '-dash-first' }, 'name'],
    [{ name: 'has space' }, 'name'],
    [{ name: 'x'.repeat(101) }, 'name'],
    [{ target: 'bad target' }, 'target'],
    [{ compression: 'zstd', level: '20' }, 'level'],
    [{ compression: 'gzip', level: '10' }, 'level'],
    [{ level: '0' }, 'level'],
    [{ level: '3.5' }, 'level'],
    [{ jobs: '33', format: 'directory' }, 'jobs'],
    [{ jobs: '2', format: 'custom' }, 'jobs'],
    [{ schemaOnly: true, dataOnly: true }, 'dataOnly'],
    [{ schemas: 'a\u0001b' }, 'schemas'],
    [{ excludeTables: 'y'.repeat(201) }, 'excludeTables'],
  ]
  for (const [over, field] of cases) {
    const { request, errors } = buildCreateRequest(form(over))
    t.equal(request, undefined, `${JSON.stringify(over).slice(0, 60)} is refused`)
    t.ok(errors[field], `on the ${field} field`)
  }
})

t.test('values the client accepts at the edges are accepted by the server schema too', async t => {
  for (const over of [{ name: 'A'.repeat(100) }, { compression: 'zstd' as const, level: '19' }, { format: 'directory' as const, jobs: '32' }, { level: '1' }]) {
    const { request } = buildCreateRequest(form(over))
    t.ok(request && serverCheck.Check(request), JSON.stringify(over).slice(0, 60))
  }
})

t.test('a server error is placed on the field it names', async t => {
  t.equal(fieldOfServerError('body.level: must be at most 19'), 'level')
  t.equal(fieldOfServerError('body/level must be <= 19'), 'level')
  t.equal(fieldOfServerError("body must NOT have additional property 'foo'"), undefined)
  t.equal(fieldOfServerError('a backup named nightly.dump already exists: choose another name'), 'name')
  t.equal(fieldOfServerError('unknown target "prod"'), 'target')
  t.equal(fieldOfServerError('excludeTables: too many patterns'), 'excludeTables')
  t.equal(fieldOfServerError('the backups directory is not writable'), undefined)
})
