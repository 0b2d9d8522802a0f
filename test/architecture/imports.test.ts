import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * The house's layering, checked on the import graph: schemas/ imports nothing of ours, the engine imports no
 * adapter (http, cli) and no fastify, nothing imports upwards into an adapter, and no module is part of a cycle.
 */
const repo = fileURLToPath(new URL('../..', import.meta.url))

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return sources(p)
    return /\.(ts|svelte)$/.test(name) && !name.endsWith('.d.ts') ? [p] : []
  })
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g

function importsOf (file: string): { local: string[], packages: string[] } {
  const text = readFileSync(file, 'utf8')
  const local: string[] = []
  const packages: string[] = []
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]
    if (spec.startsWith('.')) local.push(resolve(dirname(file), spec))
    else packages.push(spec)
  }
  return { local, packages }
}

const files = [...sources(join(repo, 'schemas')), ...sources(join(repo, 'server')), ...sources(join(repo, 'client/src'))]
const graph = new Map(files.map(f => [f, importsOf(f)]))
const rel = (f: string): string => relative(repo, f)
const under = (f: string, dir: string): boolean => rel(f).startsWith(dir + '/')

t.test('schemas/ is the contract: it imports typebox and other schemas only', async t => {
  const bad = files.filter(f => under(f, 'schemas')).flatMap(f => [
    ...graph.get(f)!.local.filter(i => !under(i, 'schemas')).map(i => `${rel(f)} -> ${rel(i)}`),
    ...graph.get(f)!.packages.filter(p => !p.startsWith('typebox')).map(p => `${rel(f)} -> ${p}`),
  ])
  t.same(bad, [])
})

t.test('the engine imports no adapter and no fastify', async t => {
  const bad = files.filter(f => under(f, 'server/engine')).flatMap(f => [
    ...graph.get(f)!.local.filter(i => under(i, 'server/http') || under(i, 'server/cli') || under(i, 'client')).map(i => `${rel(f)} -> ${rel(i)}`),
    ...graph.get(f)!.packages.filter(p => p === 'fastify' || p.startsWith('@fastify/')).map(p => `${rel(f)} -> ${p}`),
  ])
  t.same(bad, [])
})

t.test('no module outside an adapter imports one (http and cli are leaves), and the client only imports schemas', async t => {
  const bad = files.flatMap(f => graph.get(f)!.local
    .filter(i => (under(i, 'server/http') && !under(f, 'server/http') && !under(f, 'server/cli')) ||
      (under(i, 'server/cli') && !under(f, 'server/cli')) ||
      (under(f, 'client') && !under(i, 'client') && !under(i, 'schemas')))
    .map(i => `${rel(f)} -> ${rel(i)}`))
  t.same(bad, [])
})

t.test('no import cycle between modules', async t => {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map(rel).join(' -> '))
      return
    }
    state.set(f, 'open')
    for (const i of graph.get(f)?.local ?? []) if (graph.has(i)) visit(i, [...path, f])
    state.set(f, 'done')
  }
  for (const f of files) visit(f, [])
  t.same(cycles, [])
})
