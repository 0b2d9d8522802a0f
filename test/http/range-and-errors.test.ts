import t from 'tap'
import { ERROR_CODES } from '../../schemas/errors.ts'
import { PgkeepError } from '../../server/errors.ts'
import { HTTP_STATUS, toErrorReply } from '../../server/http/error-codes.ts'
import { parseRange } from '../../server/http/range.ts'

t.test('byte ranges: first-last, open-ended, suffix, clamped; past the end is unsatisfiable; junk is ignored', async t => {
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 })
  t.same(parseRange('bytes=50-', 100), { start: 50, end: 99 })
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-500', 100), { start: 0, end: 99 })
  t.same(parseRange('bytes=90-500', 100), { start: 90, end: 99 })
  t.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
  t.equal(parseRange('bytes=9-3', 100), 'unsatisfiable')
  t.equal(parseRange('bytes=-0', 100), 'unsatisfiable')
  t.equal(parseRange(undefined, 100), undefined)
  t.equal(parseRange('bytes=0-1,5-6', 100), undefined, 'several ranges: the whole file is served')
  t.equal(parseRange('items=0-1', 100), undefined)
})

t.test('every engine error code has an HTTP status, and replies never carry internals', async t => {
  for (const code of ERROR_CODES) t.ok(HTTP_STATUS[code] >= 400, code)
  t.same(toErrorReply(new PgkeepError('QUEUE_FULL', 'the queue is full')), { statusCode: 429, code: 'QUEUE_FULL', error: 'Too Many Requests', message: 'the queue is full' })
  const internal = toErrorReply(new PgkeepError('INTERNAL', 'ENOENT /secret/path'))
  t.equal(internal.statusCode, 500)
  t.notMatch(internal.message, '/secret/path')
  const plain = toErrorReply(new TypeError('cannot read x of undefined'))
  t.same(plain, { statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'internal error; see the server log' })
  const tooLarge = toErrorReply(Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }))
  t.match(tooLarge, { statusCode: 413, code: 'INVALID_INPUT' })
})
