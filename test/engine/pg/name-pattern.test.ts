import t from 'tap'
import { parseSchemaPattern, parseTablePattern } from '../../../server/engine/pg/name-pattern.ts'

t.test('table patterns become the anchored regexes pg_dump sends to the server', async t => {
  t.same(parseTablePattern('Orders', 'db'), { database: undefined, name: '^(orders)$' })
  t.same(parseTablePattern('sales.order_?*', 'db'), { database: undefined, schema: '^(sales)$', name: '^(order_..*)$' })
  t.same(parseTablePattern('"My.Schema"."T*"', 'db'), { database: undefined, schema: '^(My\\.Schema)$', name: '^(T\\*)$' })
  t.same(parseTablePattern('"say ""hi"""', 'db'), { database: undefined, name: '^(say "hi")$' })
  t.same(parseTablePattern('price$', 'db'), { database: undefined, name: '^(price\\$)$' }, '$ is always literal')
  t.same(parseTablePattern('arr[]', 'db'), { database: undefined, name: '^(arr\\[])$' }, 'a bare [] is literal')
  t.same(parseTablePattern('t[0-9]', 'db'), { database: undefined, name: '^(t[0-9])$' }, 'other regex syntax passes through')
  t.same(parseTablePattern('DB.s.t', 'db'), { database: 'db', schema: '^(s)$', name: '^(t)$' })
})

t.test('schema patterns allow a database prefix and nothing more', async t => {
  t.same(parseSchemaPattern('Sales*', 'db'), { database: undefined, name: '^(sales.*)$' })
  t.same(parseSchemaPattern('db.sales', 'db'), { database: 'db', name: '^(sales)$' })
  t.throws(() => parseSchemaPattern('other.sales', 'db'), { code: 'INVALID_INPUT', message: /cross-database/ })
  t.throws(() => parseSchemaPattern('a.b.c', 'db'), { code: 'INVALID_INPUT', message: /too many dotted names/ })
  t.throws(() => parseTablePattern('a.b.c.d', 'db'), { code: 'INVALID_INPUT', message: /too many dotted names/ })
})
