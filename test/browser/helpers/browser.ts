import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync']

export const DESKTOP = { width: 1280, height: 900 }
export const PHONE = { width: 390, height: 844 }

export interface BrowserSession {
  context: BrowserContext
  page: Page
  close (): Promise<void>
}

/**
 * One Chromium per test file, shared by the sessions open at the same time (a launch costs more than the rest of
 * a short test), closed with the last of them so nothing keeps the test process alive.
 */
let shared: { browser: Promise<Browser>, sessions: number } | undefined

/**
 * Debian's Chromium, each session in a context of its own: a fresh in-memory profile, so no cookie, storage or
 * cache leaks from one session to the next.
 */
export async function openBrowser (baseURL: string, viewport = DESKTOP): Promise<BrowserSession> {
  shared ??= { browser: chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true }), sessions: 0 }
  const mine = shared
  mine.sessions++
  const context = await (await mine.browser).newContext({ baseURL, viewport, acceptDownloads: true })
  context.setDefaultTimeout(20_000)
  // the tests' TypeScript goes through tsx, whose esbuild keeps function names with a __name(fn, "name") helper;
  // a function handed to page.evaluate carries those calls into the page, where the helper must exist too
  await context.addInitScript({ content: 'globalThis.__name ??= (fn) => fn' })
  const page = await context.newPage()
  let closed = false
  return {
    context,
    page,
    close: async () => {
      if (closed) return
      closed = true
      await context.close().catch(() => {})
      if (--mine.sessions > 0) return
      if (shared === mine) shared = undefined
      await (await mine.browser).close().catch(() => {})
    },
  }
}

/** Logs in through the form, as a person would, and waits for the dashboard. */
export async function login (page: Page, username: string, password: string, path = '/dashboard/backup'): Promise<void> {
  await page.goto(path)
  await page.waitForURL(/\/login/)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(url => url.pathname === path)
  await page.getByRole('heading', { level: 1 }).waitFor()
}

/**
 * Records every value `attr` takes on elements matching `selector`, from now on, into
 * window[key] — so a test can assert on a sequence without sampling it on a timer.
 */
export async function recordAttribute (page: Page, key: string, selector: string, attr: string): Promise<void> {
  await page.evaluate(({ key, selector, attr }) => {
    const seen: string[] = []
    ;(window as unknown as Record<string, string[]>)[key] = seen
    const note = (): void => {
      for (const el of Array.from(document.querySelectorAll(selector))) {
        const v = el.getAttribute(attr)
        if (v !== null && seen.at(-1) !== v) seen.push(v)
      }
    }
    note()
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: [attr] })
  }, { key, selector, attr })
}

export async function recorded (page: Page, key: string): Promise<string[]> {
  return await page.evaluate(k => [...((window as unknown as Record<string, string[]>)[k] ?? [])], key)
}
