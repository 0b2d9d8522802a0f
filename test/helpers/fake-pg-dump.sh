#!/bin/sh
# A stand-in for pg_dump, only for faults a real one cannot be made to produce on demand
# (dying after writing a lot, hanging, odd stderr). Behaviour comes from the environment:
#   FAKE_PG_DUMP_BYTES     bytes written to stdout (default 1048576)
#   FAKE_PG_DUMP_SLEEP_MS  pause after the bytes are written, before exiting (default 0)
#   FAKE_PG_DUMP_STDERR    text written to stderr just before exiting ("\n" separates lines)
#   FAKE_PG_DUMP_EXIT      exit code (default 0)
# `--version` prints a pg_dump 15 banner. Node (not a shell loop) does the work so that SIGTERM
# ends the one process holding the pipes, as it does for the real pg_dump. NODE_OPTIONS is cleared
# so a test runner's loaders are not dragged into it.
NODE_OPTIONS= exec node --input-type=module -e '
const args = process.argv.slice(1)
if (args.includes("--version") || args.includes("-V")) {
  process.stdout.write("pg_dump (PostgreSQL) 15.14\n")
  process.exit(0)
}
const env = process.env
const total = Number(env.FAKE_PG_DUMP_BYTES ?? 1048576)
const sleepMs = Number(env.FAKE_PG_DUMP_SLEEP_MS ?? 0)
const exitCode = Number(env.FAKE_PG_DUMP_EXIT ?? 0)
const stderrText = (env.FAKE_PG_DUMP_STDERR ?? "").replace(/\\n/g, "\n")
process.stderr.write("pg_dump: fake pg_dump writing " + total + " bytes\n")
const line = Buffer.from("COPY public.fake (id, payload) FROM stdin; 0123456789abcdefghijklmnopqrstuvwxyz\n")
const block = Buffer.alloc(64 * 1024)
for (let i = 0; i < block.length; i += line.length) line.copy(block, i)
let written = 0
const finish = () => {
  setTimeout(() => {
    if (stderrText) process.stderr.write(stderrText.endsWith("\n") ? stderrText : stderrText + "\n")
    process.exitCode = exitCode
  }, sleepMs)
}
const pump = () => {
  while (written < total) {
    const n = Math.min(block.length, total - written)
    written += n
    if (!process.stdout.write(block.subarray(0, n))) { process.stdout.once("drain", pump); return }
  }
  finish()
}
process.stdout.on("error", () => process.exit(141))
pump()
' -- "$@"
