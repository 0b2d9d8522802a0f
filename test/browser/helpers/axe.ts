import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'

const AXE = fileURLToPath(new URL('../../../node_modules/axe-core/axe.min.js', import.meta.url))
/** WCAG 2.1 A + AA, and axe's best practices */
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']

export interface AxeProblem { id: string, impact: string | null, help: string, targets: string[] }

/** axe-core run on the page as it is now; one line per rule broken, naming the elements. */
export async function axeProblems (page: Page): Promise<AxeProblem[]> {
  if (!await page.evaluate(() => 'axe' in window)) await page.addScriptTag({ path: AXE })
  return await page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run (ctx: Document, opts: unknown): Promise<{ violations: Array<{ id: string, impact: string | null, help: string, nodes: Array<{ target: unknown[] }> }> }> } }).axe
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
    return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))
  }, TAGS)
}
