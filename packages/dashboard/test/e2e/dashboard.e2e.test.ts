// End-to-end: the built dashboard, served by the real service on a seeded database, driven in
// Debian's Chromium. Each page must show the numbers the API gives for the same request, and
// pass axe's WCAG 2 A/AA rules (serious/critical) in both themes. Locates everything the way
// the dashboard UI contract fixes it (labels, roles, data-testid).
// Screenshots: STRATA_SCREENSHOTS=1 copies them to docs/screenshots.
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ensureDashboardBuilt,
  launchBrowser,
  OPERATOR_TOKEN,
  Screenshots,
  seriousA11yViolations,
  startSeededServer,
  TIMELINE_ACTIVITIES,
  TIMELINE_USER,
  type SeededServer,
} from './seeded-server.js'

const WAIT = 10_000
/** For the tests that visit several pages (axe is CPU-heavy on a loaded 2-core machine). */
const SLOW = 60_000
const NAV = ['Overview', 'Recent logins', 'Users', 'Sessions', 'Imports', 'Performance'] as const

let s: SeededServer
let browser: Browser
const shots = new Screenshots()
const contexts: BrowserContext[] = []
/** Uncaught exceptions and CSP violations from every page: the last test wants none. */
const pageProblems: string[] = []

beforeAll(async () => {
  // The build (only when dist is missing) and the seeding run while Chromium starts.
  const [server, b] = await Promise.allSettled([
    ensureDashboardBuilt().then(startSeededServer),
    launchBrowser(),
  ])
  // Keep what did start, so afterAll stops it; then fail with the first reason.
  if (server.status === 'fulfilled') s = server.value
  if (b.status === 'fulfilled') browser = b.value
  for (const r of [b, server]) if (r.status === 'rejected') throw r.reason
}, 240_000)

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await s?.stop()
  await shots.cleanup()
})

interface Tab {
  page: Page
  /** URLs of the API calls the page made, oldest first; clear it before an action. */
  calls: string[]
}

/** A fresh browser context (own sessionStorage) preferring the light theme. */
async function openTab(viewport = { width: 1280, height: 800 }): Promise<Tab> {
  const context = await browser.newContext({
    viewport,
    colorScheme: 'light',
    reducedMotion: 'reduce',
  })
  contexts.push(context)
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT)
  const calls: string[] = []
  page.on('pageerror', (e) => pageProblems.push(`${page.url()}: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text()))
      pageProblems.push(`${page.url()}: ${m.text()}`)
  })
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) calls.push(r.url())
  })
  return { page, calls }
}

const dash = (path: string) => `${s.url}/dashboard${path}`
const nav = (page: Page) => page.getByRole('navigation', { name: 'Main' })

/**
 * A <select> by its accessible name: a wrapping <label> also holds the options' text, which
 * getByLabel's exact match would include.
 */
const select = (page: Page, name: string) => page.getByRole('combobox', { name, exact: true })

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(dash('/'))
  await page.getByLabel('API key').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await nav(page).waitFor()
}

/** The page's single h1 reads `name` and nothing is loading any more. */
async function settled(page: Page, name: string): Promise<void> {
  await expect
    .poll(() => page.locator('h1').allInnerTexts(), { timeout: WAIT })
    .toEqual([expect.stringMatching(new RegExp(`^\\s*${name}\\s*$`))])
  // A function, not a string: the app's CSP forbids eval, which a string predicate needs.
  await page.waitForFunction(
    () =>
      (globalThis as any).document.querySelectorAll('[role="progressbar"], [aria-busy="true"]')
        .length === 0,
    undefined,
    { timeout: WAIT },
  )
}

/** The last call the page made to an API path (optionally with a query parameter value). */
function lastCall(tab: Tab, path: string, param?: [string, string]): URL {
  const hit = tab.calls
    .map((u) => new URL(u))
    .filter((u) => u.pathname === path && (!param || u.searchParams.get(param[0]) === param[1]))
    .at(-1)
  if (!hit) throw new Error(`the page made no call to ${path}; calls: ${tab.calls.join(', ')}`)
  return hit
}

/**
 * The API's answer, fetched again by the test, to the call of the page whose answer has
 * `shown` at `field` (a page may make several calls to one path, e.g. a comparison period);
 * fails listing what each call answered when none does.
 */
async function answerShowing(
  tab: Tab,
  path: string,
  field: (answer: any) => unknown,
  shown: unknown,
  token = OPERATOR_TOKEN,
): Promise<any> {
  const calls = [...new Set(tab.calls)].map((u) => new URL(u)).filter((u) => u.pathname === path)
  if (!calls.length)
    throw new Error(`the page made no call to ${path}; calls: ${tab.calls.join(', ')}`)
  const seen: string[] = []
  for (const call of calls.reverse()) {
    const answer = await s.api(call.pathname + call.search, token)
    if (field(answer) === shown) return answer
    seen.push(`${call.search} → ${JSON.stringify(field(answer))}`)
  }
  throw new Error(
    `the page shows ${JSON.stringify(shown)}, but its calls to ${path} answered: ${seen.join('; ')}`,
  )
}

/** A number shown as text: thousands separators and a trailing unit are allowed. */
function shownNumber(text: string): { value: number; decimals: number } {
  const m = /-?\d[\d,\s\u00a0\u202f]*(\.\d+)?/.exec(text)
  if (!m) throw new Error(`no number in ${JSON.stringify(text)}`)
  return {
    value: Number(m[0].replace(/[,\s\u00a0\u202f]/g, '')),
    decimals: m[1] ? m[1].length - 1 : 0,
  }
}

const UNITS: Record<string, number> = { d: 86_400, h: 3600, min: 60, m: 60, s: 1 }

/** A duration shown as "1 h 5 min", "3 min 20 s" or "45 s": seconds, and its smallest unit. */
function shownDuration(text: string): { seconds: number; unit: number } {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)\s*(d|h|min|m|s)\b/g)]
  if (!parts.length) throw new Error(`no duration in ${JSON.stringify(text)}`)
  const units = parts.map((p) => UNITS[p[2]!]!)
  return {
    seconds: parts.reduce((sum, p, i) => sum + Number(p[1]) * units[i]!, 0),
    unit: Math.min(...units),
  }
}

async function testIdNumber(page: Page, id: string): Promise<number> {
  return shownNumber(await page.getByTestId(id).innerText()).value
}

async function expectNoSeriousA11yViolations(page: Page, where: string): Promise<void> {
  expect(await seriousA11yViolations(page), `axe on ${where}`).toEqual([])
}

async function goVia(page: Page, link: (typeof NAV)[number]): Promise<void> {
  await nav(page).getByRole('link', { name: link, exact: true }).click()
  await settled(page, link)
}

describe('sign-in', () => {
  it('a bad key shows an alert and no dashboard', async () => {
    const { page } = await openTab()
    await page.goto(dash('/'))
    await expect(page.getByRole('form', { name: 'Sign in' }).count()).resolves.toBe(1)
    await page.getByLabel('API key').fill('strata_admin_not-a-real-key-0000000000')
    await page.getByRole('button', { name: 'Sign in' }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    expect(await alert.innerText()).toMatch(/Invalid/)
    expect(await nav(page).count()).toBe(0)
    expect(page.url()).not.toContain('not-a-real-key')
    await shots.take(page, 'sign-in-error')
    await expectNoSeriousA11yViolations(page, 'sign-in with an error (light)')
  })

  it("a project's write key is refused with the server's error code", async () => {
    const { page } = await openTab()
    await page.goto(dash('/'))
    await page.getByLabel('API key').fill(s.a.writeKey)
    await page.getByRole('button', { name: 'Sign in' }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    expect(await alert.innerText()).toContain('STRATA_AUTH_FORBIDDEN')
    expect(await nav(page).count()).toBe(0)
  })

  it('"Sign out" clears the key and shows the sign-in form again', async () => {
    const { page } = await openTab()
    await signIn(page, OPERATOR_TOKEN)
    expect(await page.evaluate(`sessionStorage.getItem('strata.key')`)).toContain(OPERATOR_TOKEN)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('form', { name: 'Sign in' }).waitFor()
    expect(await page.evaluate(`sessionStorage.getItem('strata.key')`)).toBeNull()
  })
})

describe('operator: every page shows the seeded data', () => {
  let tab: Tab
  let page: Page

  beforeAll(async () => {
    tab = await openTab()
    page = tab.page
    await signIn(page, OPERATOR_TOKEN)
  })

  it('Overview: header, nav, and KPIs equal the API answer for the same request', async () => {
    tab.calls.length = 0
    await page.goto(dash(`/?project=${s.a.id}`))
    await settled(page, 'Overview')
    expect(await page.locator('header').getByText('Strata').count()).toBeGreaterThan(0)
    for (const name of NAV)
      expect(await nav(page).getByRole('link', { name, exact: true }).count(), name).toBe(1)

    expect(lastCall(tab, '/v1/analytics/logins').searchParams.get('project')).toBe(s.a.id)
    const total = await testIdNumber(page, 'kpi-total')
    const want = await answerShowing(tab, '/v1/analytics/logins', (r) => r.totals.logins, total)
    expect(total).toBeGreaterThan(100)
    // Distinct users may come from a call of their own (the page paints rollup totals first).
    const uniques = await answerShowing(
      tab,
      '/v1/analytics/logins',
      (r) => r.totals.uniqueUsers,
      await testIdNumber(page, 'kpi-unique-users'),
    )
    expect(uniques.totals.logins).toBe(total)
    expect(await testIdNumber(page, 'kpi-failures')).toBe(want.totals.failures)
    const rate = shownNumber(await page.getByTestId('kpi-success-rate').innerText())
    expect(Math.abs(rate.value - want.totals.successRate * 100)).toBeLessThanOrEqual(
      0.5 * 10 ** -rate.decimals + 1e-9,
    )

    const captions = await page.locator('figure figcaption').allInnerTexts()
    for (const c of [/Logins per (day|hour|week)/, /Methods/, /Devices/, /Active users/])
      expect(captions, String(c)).toContainEqual(expect.stringMatching(c))
    const tables = await page.locator('table caption').allInnerTexts()
    expect(tables).toContainEqual(expect.stringMatching(/Browsers/))
    expect(tables).toContainEqual(expect.stringMatching(/Operating systems/))
    // The browsers table lists what the API counts.
    const browsers = Object.keys(want.byBrowser as Record<string, number>)
    const browserTable = page.locator('table', {
      has: page.locator('caption', { hasText: 'Browsers' }),
    })
    for (const name of browsers.slice(0, 3))
      expect(await browserTable.innerText(), name).toContain(name)

    await shots.take(page, 'overview')
    await expectNoSeriousA11yViolations(page, 'Overview (light)')
  })

  it('Recent logins: one row per login the API returns, newest first', async () => {
    tab.calls.length = 0
    await goVia(page, 'Recent logins')
    const rows = page.getByTestId('login-row')
    await rows.first().waitFor()
    const call = lastCall(tab, '/v1/analytics/recent-logins')
    const want = await s.api(call.pathname + call.search)
    expect(want.items.length).toBeGreaterThan(0)
    expect(await rows.count()).toBe(want.items.length)
    expect(await rows.first().innerText()).toContain(TIMELINE_USER)
    const caption = await page.locator('table caption').allInnerTexts()
    expect(caption).toContainEqual(expect.stringMatching(/Recent logins/))
    expect(await page.getByLabel('Live').count()).toBe(1)
    await shots.take(page, 'recent-logins')
    await expectNoSeriousA11yViolations(page, 'Recent logins (light)')
  })

  it('Recent logins: Result = failure leaves only failed logins in the table', async () => {
    const rows = page.getByTestId('login-row')
    const before = await rows.allInnerTexts()
    expect(
      before.some((t) => !/fail/i.test(t)),
      'some successful logins before filtering',
    ).toBe(true)
    await page.getByLabel('Result').selectOption('failure')
    await expect
      .poll(
        async () => {
          const texts = await rows.allInnerTexts()
          return texts.length > 0 && texts.every((t) => /fail/i.test(t))
        },
        { timeout: WAIT },
      )
      .toBe(true)
    expect(await rows.allInnerTexts()).not.toEqual(before)
    // As many rows as failures in the answer of the page's last call (filtered there or here).
    const call = lastCall(tab, '/v1/analytics/recent-logins')
    const want = await s.api(call.pathname + call.search)
    expect(await rows.count()).toBe(
      (want.items as { success: boolean }[]).filter((i) => !i.success).length,
    )
    await page.getByLabel('Result').selectOption('all')
  })

  it('Recent logins: the Method and User id filters, kept in the URL', async () => {
    const rows = page.getByTestId('login-row')
    const allRows = async (re: RegExp) => {
      const texts = await rows.allInnerTexts()
      return texts.length > 0 && texts.every((t) => re.test(t))
    }
    await select(page, 'Method').selectOption('google')
    await expect.poll(() => allRows(/\bgoogle\b/), { timeout: WAIT }).toBe(true)
    await page.getByLabel('User id', { exact: true }).fill(TIMELINE_USER)
    await page.getByLabel('User id', { exact: true }).press('Enter')
    await expect
      .poll(async () => (await allRows(/\bgoogle\b/)) && allRows(new RegExp(TIMELINE_USER)), {
        timeout: WAIT,
      })
      .toBe(true)
    expect(await rows.count()).toBe(1)
    const url = new URL(page.url())
    expect(url.search).toContain('google')
    expect(url.search).toContain(TIMELINE_USER)
    // The filtered view survives a reload (it is in the URL).
    await page.reload()
    await settled(page, 'Recent logins')
    expect(await select(page, 'Method').inputValue()).toBe('google')
    await expect.poll(() => rows.count(), { timeout: WAIT }).toBe(1)
    await page.getByLabel('User id', { exact: true }).fill('')
    await page.getByLabel('User id', { exact: true }).press('Enter')
    await select(page, 'Method').selectOption('')
    await expect.poll(() => rows.count(), { timeout: WAIT }).toBeGreaterThan(1)
  })

  it('Users: the user link in Recent logins opens the timeline, and "Load more" pages on', async () => {
    tab.calls.length = 0
    await page.getByTestId('login-row').first().getByRole('link', { name: TIMELINE_USER }).click()
    await settled(page, `User ${TIMELINE_USER}`)
    expect(new URL(page.url()).pathname).toBe(`/dashboard/users/${TIMELINE_USER}`)
    const rows = page.getByTestId('activity-row')
    await rows.first().waitFor()
    const call = lastCall(tab, `/v1/analytics/users/${TIMELINE_USER}/activity`)
    const want = await s.api(call.pathname + call.search)
    expect(await rows.count()).toBe(want.items.length)
    expect(await page.locator('table caption').allInnerTexts()).toContainEqual(
      expect.stringMatching(/Activity/),
    )
    await shots.take(page, 'user-timeline')
    await expectNoSeriousA11yViolations(page, 'User timeline (light)')

    // The fixture gave this user more activities than one page: keyset pages until all shown.
    const more = page.getByRole('button', { name: 'Load more' })
    for (let i = 0; i < 10 && (await rows.count()) < TIMELINE_ACTIVITIES; i++) {
      const n = await rows.count()
      await more.click()
      await expect.poll(() => rows.count(), { timeout: WAIT }).toBeGreaterThan(n)
    }
    expect(await rows.count()).toBe(TIMELINE_ACTIVITIES)
  })

  it('Users: the "User id" search opens a timeline', async () => {
    await goVia(page, 'Users')
    await expectNoSeriousA11yViolations(page, 'Users (light)')
    await page.getByLabel('User id', { exact: true }).fill(TIMELINE_USER)
    await page.getByRole('button', { name: 'Show' }).click()
    await settled(page, `User ${TIMELINE_USER}`)
    await page.getByTestId('activity-row').first().waitFor()
  })

  it('Sessions: KPIs equal the API answer', async () => {
    tab.calls.length = 0
    await goVia(page, 'Sessions')
    expect(lastCall(tab, '/v1/analytics/sessions').searchParams.get('project')).toBe(s.a.id)
    const active = await testIdNumber(page, 'kpi-active-sessions')
    const want = await answerShowing(tab, '/v1/analytics/sessions', (r) => r.active, active)
    expect(want.active).toBeGreaterThan(0)
    // Shown as e.g. "3 h 55 min": equal to the API's seconds to within the smallest unit shown.
    const length = shownDuration(await page.getByTestId('kpi-average-length').innerText())
    expect(
      Math.abs(length.seconds - want.averageLengthSeconds),
      `${length.seconds} s shown, ${want.averageLengthSeconds} s answered`,
    ).toBeLessThan(length.unit)
    await shots.take(page, 'sessions')
    await expectNoSeriousA11yViolations(page, 'Sessions (light)')
  })

  it('Imports: the finished job, its progress and a Rejects link', async () => {
    await goVia(page, 'Imports')
    expect(await page.locator('table caption').allInnerTexts()).toContainEqual(
      expect.stringMatching(/Import jobs/),
    )
    const row = page.getByTestId('import-row').filter({ hasText: /completed/i })
    await row.first().waitFor()
    const progress = row.locator('progress').first()
    expect(await progress.getAttribute('value')).toBe(await progress.getAttribute('max'))
    const rejects = row.getByRole('link', { name: 'Rejects' })
    expect(await rejects.count()).toBe(1)
    expect(await rejects.getAttribute('href')).toContain(s.importJobId)
    await shots.take(page, 'imports')
    await expectNoSeriousA11yViolations(page, 'Imports (light)')
  })

  it('Performance: a health score and every section', async () => {
    await goVia(page, 'Performance')
    const score = await testIdNumber(page, 'health-overall')
    expect(score).toBeGreaterThanOrEqual(0)
    expect(score).toBeLessThanOrEqual(100)
    const h2 = await page.locator('h2').allInnerTexts()
    for (const name of [
      'Health',
      'Alerts',
      'Slow queries',
      'Top statements',
      'Index suggestions',
      'Pool',
      'Cache',
      'Event loop',
    ])
      expect(h2, name).toContainEqual(expect.stringMatching(new RegExp(`^\\s*${name}\\s*$`)))
    await shots.take(page, 'performance')
    await expectNoSeriousA11yViolations(page, 'Performance (light)')
  })

  it('the project switcher shows project B', async () => {
    await goVia(page, 'Overview')
    tab.calls.length = 0
    expect(await select(page, 'Project').isVisible()).toBe(true)
    await select(page, 'Project').selectOption(s.b.id)
    await expect
      .poll(() => new URL(page.url()).searchParams.get('project'), { timeout: WAIT })
      .toBe(s.b.id)
    await settled(page, 'Overview')
    const call = lastCall(tab, '/v1/analytics/logins', ['project', s.b.id])
    const want = await s.api(call.pathname + call.search)
    const a = await s.api(`${call.pathname}${call.search.replace(s.b.id, s.a.id)}`)
    expect(want.totals.logins).not.toBe(a.totals.logins)
    await expect
      .poll(() => testIdNumber(page, 'kpi-total'), { timeout: WAIT })
      .toBe(want.totals.logins)
    expect(
      tab.calls.filter((u) => u.includes('/v1/analytics/')).every((u) => !u.includes(s.a.id)),
    ).toBe(true)
  })

  it('a deep link keeps its range and time zone across a reload', async () => {
    const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10)
    const [from, to] = [day(9), day(2)]
    const q = `from=${from}&to=${to}&tz=America%2FNew_York&project=${s.a.id}`
    tab.calls.length = 0
    await page.goto(dash(`/logins?${q}`))
    await settled(page, 'Recent logins')
    await page.reload()
    await settled(page, 'Recent logins')
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe(from)
    expect(await page.getByLabel('To', { exact: true }).inputValue()).toBe(to)
    expect(await select(page, 'Time zone').inputValue()).toBe('America/New_York')
    const url = new URL(page.url())
    expect(url.searchParams.get('from')).toBe(from)
    expect(url.searchParams.get('tz')).toBe('America/New_York')
    // On the Overview the same state drives the API call.
    await nav(page).getByRole('link', { name: 'Overview', exact: true }).click()
    await settled(page, 'Overview')
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe(from)
    expect(lastCall(tab, '/v1/analytics/logins').searchParams.get('tz')).toBe('America/New_York')
  })
})

describe('errors from the API', () => {
  it("a deep link to an unknown project shows the server's error in an alert", async () => {
    const { page } = await openTab()
    await signIn(page, OPERATOR_TOKEN)
    const missing = '00000000-0000-4000-8000-000000000000'
    await page.goto(dash(`/sessions?project=${missing}`))
    await settled(page, 'Sessions')
    await expect
      .poll(() => page.getByRole('alert').allInnerTexts(), { timeout: WAIT })
      .toContainEqual(expect.stringContaining('STRATA_PROJECT_NOT_FOUND'))
    expect(await page.getByTestId('kpi-active-sessions').count()).toBe(0)
  })
})

describe("a project's admin key", () => {
  it(
    'sees only its project and is told that Imports and Performance need the operator',
    async () => {
      const tab = await openTab()
      const { page } = tab
      const consoleErrors: string[] = []
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text())
      })
      await signIn(page, s.a.adminKey)
      await settled(page, 'Overview')
      expect(await select(page, 'Project').isVisible()).toBe(false)
      // The operator-only project list is never asked for: no 403 in the console.
      expect(tab.calls.map((u) => new URL(u).pathname)).not.toContain('/v1/projects')
      const call = lastCall(tab, '/v1/analytics/logins')
      expect(call.searchParams.get('project') ?? s.a.id).toBe(s.a.id)
      const total = await testIdNumber(page, 'kpi-total')
      await answerShowing(tab, '/v1/analytics/logins', (r) => r.totals.logins, total, s.a.adminKey)
      expect(tab.calls.some((u) => u.includes(s.b.id))).toBe(false)
      for (const name of ['Imports', 'Performance'] as const) {
        await nav(page).getByRole('link', { name, exact: true }).click()
        await settled(page, name)
        await expect
          .poll(() => page.getByRole('status').allInnerTexts(), { timeout: WAIT })
          .toContainEqual(expect.stringContaining('These pages need the operator token'))
        await expectNoSeriousA11yViolations(page, `${name} for a project key (light)`)
      }
      expect(consoleErrors.filter((t) => /\b40[13]\b/.test(t))).toEqual([])
    },
    SLOW,
  )
})

describe('layout, themes and accessibility', () => {
  it('a phone-width Overview has no horizontal overflow', async () => {
    const { page } = await openTab({ width: 390, height: 844 })
    await signIn(page, OPERATOR_TOKEN)
    await page.goto(dash(`/?project=${s.a.id}`))
    await settled(page, 'Overview')
    await page.getByTestId('kpi-total').waitFor()
    const { scrollWidth, innerWidth } = (await page.evaluate(
      `({ scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth })`,
    )) as { scrollWidth: number; innerWidth: number }
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth + 1)
    await shots.take(page, 'overview-phone')
  })

  it(
    '"Toggle theme" switches data-theme, and every page passes axe in the dark theme',
    async () => {
      const { page } = await openTab()
      await signIn(page, OPERATOR_TOKEN)
      await page.goto(dash(`/?project=${s.a.id}`))
      await settled(page, 'Overview')
      const theme = () => page.evaluate(`document.documentElement.dataset.theme ?? null`)
      const before = await theme()
      await page.getByRole('button', { name: 'Toggle theme' }).click()
      await expect.poll(theme, { timeout: WAIT }).toBe(before === 'dark' ? 'light' : 'dark')
      if ((await theme()) !== 'dark')
        await page.getByRole('button', { name: 'Toggle theme' }).click()
      await expect.poll(theme, { timeout: WAIT }).toBe('dark')
      await page.getByTestId('kpi-total').waitFor()
      await shots.take(page, 'overview-dark')
      await expectNoSeriousA11yViolations(page, 'Overview (dark)')
      for (const name of NAV.slice(1)) {
        await goVia(page, name)
        expect(await theme(), `theme kept on ${name}`).toBe('dark')
        await expectNoSeriousA11yViolations(page, `${name} (dark)`)
      }
    },
    SLOW,
  )

  it(
    'keyboard: Tab reaches the key field and the button, Enter signs in, nav links show focus',
    async () => {
      const { page } = await openTab()
      await page.goto(dash('/'))
      const input = page.getByLabel('API key')
      const button = page.getByRole('button', { name: 'Sign in' })
      await input.waitFor()
      await tabUntil(page, input, 10)
      await page.keyboard.type(OPERATOR_TOKEN)
      await tabUntil(page, button, 5)
      await page.keyboard.press('Enter')
      await nav(page).waitFor()
      await settled(page, 'Overview')

      const links = NAV.map((name) => nav(page).getByRole('link', { name, exact: true }))
      for (const [i, link] of links.entries()) {
        await tabUntil(page, link, 40)
        // Visible focus: an outline or a box shadow that the unfocused link does not have.
        const focused = await focusStyle(link)
        await page.evaluate(`document.activeElement.blur()`)
        const unfocused = await focusStyle(link)
        expect(
          (focused.outline !== unfocused.outline && focused.outlineVisible) ||
            focused.shadow !== unfocused.shadow,
          `${NAV[i]}: focus style ${JSON.stringify(focused)} vs ${JSON.stringify(unfocused)}`,
        ).toBe(true)
        await link.focus()
      }
      await links[1]!.focus()
      await page.keyboard.press('Enter')
      await settled(page, 'Recent logins')
    },
    SLOW,
  )
})

describe('health of the pages', () => {
  it('no uncaught exception or Content-Security-Policy violation on any page above', () => {
    expect(pageProblems).toEqual([])
  })
})

/** Presses Tab until `target` has the focus, at most `max` times. */
async function tabUntil(page: Page, target: Locator, max: number): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab')
    if (await target.evaluate((el: any) => el === el.ownerDocument.activeElement)) return
  }
  throw new Error(`${String(target)} not reached with ${max} Tab presses`)
}

async function focusStyle(
  link: Locator,
): Promise<{ outline: string; outlineVisible: boolean; shadow: string }> {
  return link.evaluate((el: any) => {
    const cs = el.ownerDocument.defaultView.getComputedStyle(el)
    return {
      outline: `${cs.outlineStyle} ${cs.outlineWidth} ${cs.outlineColor}`,
      outlineVisible: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0,
      shadow: cs.boxShadow,
    }
  })
}
