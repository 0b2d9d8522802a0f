// Is a build output at least as new as every source it is made from? Used to decide whether to rebuild
// (bin/build.js) and whether the CLI can start from its bundle instead of compiling TypeScript on the fly.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export const root = join(import.meta.dirname, '..')

// runs before every CLI start from a checkout: one stat per file, none per directory entry twice
function newestMtime (path) {
  const s = statSync(path)
  if (!s.isDirectory()) return s.mtimeMs
  let newest = s.mtimeMs
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

export function isFresh (output, sources) {
  const out = join(root, output)
  if (!existsSync(out)) return false
  const present = sources.map(p => join(root, p)).filter(existsSync)
  return Math.max(...present.map(newestMtime)) <= statSync(out).mtimeMs
}

export const CLIENT = { output: 'dist/client/index.html', sources: ['client', 'schemas', 'vite.config.ts'] }
export const CLI = { output: 'dist/cli/main.js', sources: ['server', 'schemas'] }
