import { fileURLToPath } from 'node:url'

/** Path of the fake pg_dump (see fake-pg-dump.sh); spawn it in place of the real binary. */
export const FAKE_PG_DUMP = fileURLToPath(new URL('./fake-pg-dump.sh', import.meta.url))

export interface FakePgDumpBehaviour {
  /** bytes written to stdout */
  bytes?: number
  /** exit code once done */
  exit?: number
  /** stderr lines written just before exiting */
  stderr?: string[]
  /** pause after writing, before exiting (time to cancel a "hanging" dump) */
  sleepMs?: number
}

/** The environment that makes the fake pg_dump behave as asked, on top of `base`. */
export function fakePgDumpEnv (behaviour: FakePgDumpBehaviour, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base }
  if (behaviour.bytes !== undefined) env.FAKE_PG_DUMP_BYTES = String(behaviour.bytes)
  if (behaviour.exit !== undefined) env.FAKE_PG_DUMP_EXIT = String(behaviour.exit)
  if (behaviour.stderr !== undefined) env.FAKE_PG_DUMP_STDERR = behaviour.stderr.join('\n')
  if (behaviour.sleepMs !== undefined) env.FAKE_PG_DUMP_SLEEP_MS = String(behaviour.sleepMs)
  return env
}
