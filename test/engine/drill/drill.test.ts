import t from 'tap'
import type { BackupFormat } from '../../../schemas/backup.ts'
import { testCluster } from '../../helpers/pg-cluster.ts'
import { createSampleDatabase, testConfig } from '../../helpers/sample-db.ts'
import { openService } from '../../helpers/service.ts'

const cluster = await testCluster()
t.teardown(cluster.stop)
await createSampleDatabase(cluster, 'drill_src', { rows: 500 })
await cluster.psql(`
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN positive AS int CHECK (VALUE > 0);
  CREATE TABLE public.people (id positive PRIMARY KEY, m mood);
  INSERT INTO public.people VALUES (1, 'ok'), (2, 'happy');
  CREATE FUNCTION public.mood_of(p positive, fallback mood DEFAULT 'ok') RETURNS mood LANGUAGE sql AS $$ SELECT coalesce((SELECT m FROM public.people WHERE id = p), fallback) $$;
  CREATE MATERIALIZED VIEW public.order_totals AS SELECT customer, sum(amount) AS total FROM public.orders GROUP BY 1;
  CREATE INDEX orders_customer ON public.orders (customer);
`, 'drill_src')
const config = testConfig(cluster, 'drill_src', {})
t.teardown(config.cleanup)

const drillDatabases = async (): Promise<string[]> =>
  (await cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'pgkeep\\_drill\\_%' ORDER BY 1")).split('\n').filter(Boolean)

const service = await openService(config)
t.teardown(() => service.close())

for (const format of ['custom', 'plain', 'tar', 'directory'] as BackupFormat[]) {
  t.test(`a ${format} backup drills ok with every check listed, and leaves no scratch database`, async t => {
    const backup = await service.waitFor((await service.create({ format, countRows: true }, 'test')).id)
    t.equal(backup.status, 'completed')
    t.ok(backup.rowCounts?.some(r => r.table === '"public"."orders"' && r.rows === 500), 'rows counted in the dump snapshot')
    const started = await service.drills.start({ backupId: backup.id }, 'test')
    t.equal(started.status, 'running')
    t.match(started.database, /^pgkeep_drill_[0-9a-f]{8}$/)
    const drill = await service.drills.waitFor(started.id)
    t.equal(drill.status, 'passed', JSON.stringify(drill.checks.filter(c => !c.ok)))
    t.same(drill.checks.map(c => c.kind), ['restore', 'objects', 'rowCounts'])
    t.ok(drill.checks.every(c => c.ok))
    t.ok((drill.checks[1].checked ?? 0) > 10, `objects checked: ${drill.checks[1].checked}`)
    t.equal(drill.checks[2].estimate, false)
    t.ok((drill.restoreMs ?? 0) > 0)
    t.same(await drillDatabases(), [])
    const after = service.get(backup.id)
    t.match(after.drill, { id: drill.id, ok: true })
  })
}
