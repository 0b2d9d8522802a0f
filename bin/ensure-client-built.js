#!/usr/bin/env node
// Builds the dashboard (vite) when dist/client is missing or older than its sources, so `npm start`
// and `npm test` work straight after `npm ci` without a separate build step.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const built = join(root, 'dist/client/index.html')

function newestMtime (path) {
  const s = statSync(path)
  if (!s.isDirectory()) return s.mtimeMs
  let newest = s.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

const sources = ['client', 'schemas', 'vite.config.ts'].map(p => join(root, p)).filter(existsSync)
const stale = !existsSync(built) || Math.max(...sources.map(newestMtime)) > statSync(built).mtimeMs
if (stale) {
  process.stderr.write('building the dashboard (vite)...\n')
  execFileSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' })
}
