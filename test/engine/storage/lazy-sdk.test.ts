import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * The AWS SDK costs a third of a second and tens of MB to load: a dump into the local directory must not load
 * it. Follows the engine's static imports (not `import type`, not `import()`) from the service down.
 */
const repo = fileURLToPath(new URL('../../..', import.meta.url))
const STATIC = /(?:^|\n)\s*(?:import|export)\s+(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g

function staticClosure (entry: string): { files: Set<string>, packages: Map<string, string> } {
  const files = new Set<string>()
  const packages = new Map<string, string>()
  const todo = [entry]
  while (todo.length > 0) {
    const file = todo.pop()!
    if (files.has(file)) continue
    files.add(file)
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC)) {
      const spec = m[1] ?? m[2]
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec))
      else if (!spec.startsWith('node:')) packages.set(spec, file.slice(repo.length))
    }
  }
  return { files, packages }
}

t.test('the backup service loads the AWS SDK only when a bucket is used', async t => {
  const { packages } = staticClosure(resolve(repo, 'server/engine/backup-service.ts'))
  const sdk = [...packages].filter(([p]) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/')).map(([p, from]) => `${from} -> ${p}`)
  t.same(sdk, [])
})
