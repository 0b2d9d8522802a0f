// `npm run bench`: every benchmark in turn. Each prints its figures and whether it met its target.
const benches = ['dump.ts', 'dump-options.ts', 'dump-integrity.ts', 'ws-fanout.ts', 'download.ts', 'list.ts', 'catalog-list.ts', 'restore-feed.ts', 's3-upload.ts', 'encryption.ts', 's3-dump.ts', 'drill.ts', 'sets.ts', 'startup.ts']
for (const b of benches) {
  console.log(`\n=== bench/${b} ===`)
  try {
    await import(`./${b}`)
  } catch (err) {
    console.log(`bench/${b} did not run: ${(err as Error).message}`)
  }
}
