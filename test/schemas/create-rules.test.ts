import t from 'tap'
import type { CreateBackupRequest } from '../../schemas/backup.ts'
import { createRuleProblems, DEFAULT_LEVEL, LEVEL_RANGE } from '../../schemas/create-rules.ts'
import { buildCreateRequest, defaultForm } from '../../client/src/lib/validation.ts'
import { UsageError } from '../../server/cli/command.ts'
import { createRequestFromFlags } from '../../server/cli/commands/create.ts'
import { loadConfig } from '../../server/config.ts'
import { resolveCreateRequest } from '../../server/engine/backup-request.ts'
import type { PgkeepError } from '../../server/errors.ts'

const config = loadConfig({ DATABASE_URL: 'postgres://app@127.0.0.1:1/app' })

/** Each request with the field it is refused on, or undefined when every door accepts it. */
const CASES: [CreateBackupRequest, string | undefined][] = [
  [{}, undefined],
  [{ level: LEVEL_RANGE.zstd.max }, undefined],
  [{ compression: 'zstd', level: LEVEL_RANGE.zstd.min }, undefined],
  [{ compression: 'gzip', level: LEVEL_RANGE.gzip.max }, undefined],
  [{ compression: 'gzip', level: LEVEL_RANGE.gzip.max + 1 }, 'level'],
  [{ compression: 'none', level: 3 }, 'level'],
  [{ schemaOnly: true }, undefined],
  [{ schemaOnly: true, dataOnly: true }, 'dataOnly'],
  [{ jobs: 1 }, undefined],
  [{ jobs: 4 }, 'jobs'],
  [{ format: 'tar', jobs: 2 }, 'jobs'],
  [{ format: 'directory', compression: 'gzip', level: 1, jobs: 32 }, undefined],
]

function engineField (req: CreateBackupRequest): string | undefined {
  try { resolveCreateRequest(req, config) } catch (err) { return (err as PgkeepError).details?.field as string }
  return undefined
}

function cliField (req: CreateBackupRequest): string | undefined {
  const flags = {
    format: req.format, compression: req.compression, level: req.level?.toString(), jobs: req.jobs?.toString(),
    'schema-only': req.schemaOnly, 'data-only': req.dataOnly,
  }
  try { createRequestFromFlags(flags) } catch (err) {
    if (!(err instanceof UsageError)) throw err
    return /^--(level|jobs)\b/.exec(err.message)?.[1] ?? (/--data-only/.test(err.message) ? 'dataOnly' : err.message)
  }
  return undefined
}

function clientField (req: CreateBackupRequest): string | undefined {
  const form = {
    ...defaultForm(), ...(req.format && { format: req.format }), ...(req.compression && { compression: req.compression }),
    level: req.level?.toString() ?? '', jobs: req.jobs?.toString() ?? '', schemaOnly: req.schemaOnly ?? false, dataOnly: req.dataOnly ?? false,
  }
  const fields = Object.keys(buildCreateRequest(form).errors)
  return fields.length ? fields.join(',') : undefined
}

t.test('each cross-field rule names the field to fix, and a request within them has no problem', async t => {
  for (const [req, field] of CASES) t.same(createRuleProblems(req).map(p => p.field), field ? [field] : [], JSON.stringify(req))
  t.same(createRuleProblems({ compression: 'none', level: 3, schemaOnly: true, dataOnly: true, jobs: 2 }).map(p => p.rule),
    ['level-without-compression', 'schema-only-with-data-only', 'jobs-without-directory'], 'every broken rule is listed, in order')
})

t.test('the engine, the CLI and the dashboard refuse the same requests on the same field', async t => {
  for (const [req, field] of CASES) {
    t.equal(engineField(req), field, `engine: ${JSON.stringify(req)}`)
    t.equal(cliField(req), field, `cli: ${JSON.stringify(req)}`)
    // the form disables its level input without compression and leaves the value out, so it cannot send one
    if (req.compression !== 'none') t.equal(clientField(req), field, `client: ${JSON.stringify(req)}`)
  }
})

t.test('an absent level, format or compression resolves to the shared defaults', async t => {
  t.match(resolveCreateRequest({}, config), { format: 'custom', compression: 'zstd', level: DEFAULT_LEVEL.zstd })
  t.equal(resolveCreateRequest({ compression: 'gzip' }, config).level, DEFAULT_LEVEL.gzip)
  t.equal(resolveCreateRequest({ compression: 'none' }, config).level, 0)
})
