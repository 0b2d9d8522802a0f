import t from 'tap'
import type { Target } from '../../../server/config.ts'
import { parsePlainHeader, parseTocLine } from '../../../server/engine/drill/archive-toc.ts'
import { objectsCheck } from '../../../server/engine/drill/checks.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)

t.test('TOC lines and plain headers are read alike; data, attach and set entries are not objects', async t => {
  t.same(parseTocLine('215; 1259 16392 TABLE public actor postgres'), { type: 'TABLE', rest: 'public actor postgres' })
  t.same(parseTocLine('3345; 0 16392 TABLE DATA public actor postgres'), { type: 'TABLE DATA', rest: 'public actor postgres' })
  t.same(parseTocLine('12; 1259 16400 MATERIALIZED VIEW public totals postgres'), { type: 'MATERIALIZED VIEW', rest: 'public totals postgres' })
  t.equal(parseTocLine(';; Archive created at 2026-11-30'), undefined)
  t.same(parsePlainHeader('-- Name: Mixed Case; Type: SCHEMA; Schema: -; Owner: postgres'), { type: 'SCHEMA', rest: '- Mixed Case postgres' })
  t.same(parsePlainHeader('-- Data for Name: actor; Type: TABLE DATA; Schema: public; Owner: postgres'), { type: 'TABLE DATA', rest: 'public actor postgres' })
  t.equal(parsePlainHeader('-- Name: actor actor_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres'), undefined)
})

t.test('an object of the archive missing from the restored catalog fails the objects check, named', async t => {
  await cluster.createDatabase('drill_checks')
  await cluster.psql(`CREATE SCHEMA "Odd Name"; CREATE TABLE "Odd Name"."t 1" (id int);
    CREATE FUNCTION public.f(a int, b "Odd Name"."t 1") RETURNS int LANGUAGE sql AS 'SELECT 1'`, 'drill_checks')
  const target: Target = { name: 'test', host: cluster.host, port: cluster.port, user: cluster.user, database: 'drill_checks', password: cluster.password }
  const present = [
    { type: 'SCHEMA', rest: '- Odd Name postgres' },
    { type: 'TABLE', rest: 'Odd Name t 1 postgres' },
    { type: 'FUNCTION', rest: 'public f(integer, "Odd Name"."t 1") postgres' },
  ]
  t.match(await objectsCheck(target, present), { ok: true, checked: 3 })
  const missing = await objectsCheck(target, [...present, { type: 'VIEW', rest: 'public gone postgres' }, { type: 'TABLE DATA', rest: 'public gone postgres' }])
  t.match(missing, { ok: false, checked: 4, missing: ['VIEW public gone'], message: /1 of 4 objects .* missing .*VIEW public gone/ })
})
