// Dashboard: first meaningful paint of the Overview (the KPIs on screen) in Debian's Chromium,
// against the real `strata start` on a database seeded with N logins + N activities over 90
// days, each visit with a cold browser cache and a range the service has not cached yet (the
// analytics queries run for every visit). Baseline, same run: the same cold visit to the
// sign-in screen, which makes no API call (the app shell alone).
//
//   npm run bench -- dashboard [--events 10000000] [--visits 8] [--quick]
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import { eventsMigrations, ProjectStore, seedEvents } from '@strata/events'
import { createDatabase, migrate } from '@strata/pg'
import { round, summarize } from './measure.js'
import { createBenchDatabase } from './bench-database.js'
import { freePort, startService, stopService } from './service-child.js'
import type { BenchArgs, BenchResult } from './types.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const DAY = 86_400_000

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const opt = args.options ?? {}
  const quick = args.quick ?? false
  const events = Number(opt.events ?? (quick ? 100_000 : 1_000_000))
  const visits = Number(opt.visits ?? (quick ? 3 : 8))
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium`)
  const bdb = await createBenchDatabase('dashboard')
  const token = `bench-${randomBytes(12).toString('hex')}`
  try {
    const db = await createDatabase({ url: bdb.url })
    let projectId: string
    let seedMs: number
    try {
      await migrate(db, [eventsMigrations])
      projectId = (await new ProjectStore(db).createProject('bench')).project.id
      const t0 = performance.now()
      await seedEvents(db, { projectId, logins: events, activities: events, days: 90, seed: 11 })
      seedMs = performance.now() - t0
      console.log(`seeded ${events} logins + ${events} activities in ${round(seedMs / 1000, 1)} s`)
    } finally {
      await db.close()
    }
    const port = await freePort()
    const child = await startService(bdb.url, port, { STRATA_ADMIN_TOKEN: token })
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    const origin = `http://127.0.0.1:${port}`
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)
    // One cold visit: a new context (empty HTTP cache), the key put where sign-in puts it.
    const visit = async (path: string, ready: string, signedIn: boolean) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
      try {
        // As sign-in leaves it (packages/dashboard/src/session.ts).
        if (signedIn)
          await context.addInitScript({
            content: `sessionStorage.setItem('strata.key', ${JSON.stringify(token)}); sessionStorage.setItem('strata.role', 'operator')`,
          })
        const page = await context.newPage()
        await page.goto(`${origin}${path}`, { waitUntil: 'commit' })
        await page.waitForSelector(ready, { timeout: 30_000 })
        return (await page.evaluate(
          `({ ready: performance.now(), fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN })`,
        )) as { ready: number; fcp: number }
      } finally {
        await context.close()
      }
    }
    const overview: number[] = []
    const fcp: number[] = []
    const shell: number[] = []
    try {
      // The shell once to warm the service's static file cache, as any earlier visit would.
      await visit('/dashboard/', 'form[aria-label="Sign in"]', false)
      for (let i = 0; i < visits; i++) {
        shell.push((await visit('/dashboard/', 'form[aria-label="Sign in"]', false)).ready)
        // A range no earlier visit asked for: the service computes every answer.
        const from = day(Date.now() - (30 + i) * DAY)
        const r = await visit(
          `/dashboard/?project=${projectId}&from=${from}&to=${day(Date.now())}&tz=UTC`,
          '[data-testid="kpi-total"] >> text=/\\d/',
          true,
        )
        overview.push(r.ready)
        fcp.push(r.fcp)
      }
    } finally {
      await browser.close()
      await stopService(child)
    }
    const o = summarize(overview)
    const s = summarize(shell)
    const f = summarize(fcp)
    console.log(
      `overview KPIs p50 ${round(o.p50, 0)} max ${round(o.max, 0)} ms | shell p50 ${round(s.p50, 0)} ms`,
    )
    return {
      name: 'dashboard',
      params: { loginEvents: events, activities: events, days: 90, visits },
      results: [
        {
          metric: 'Overview: KPIs on screen (from navigation start), p50',
          value: round(o.p50, 0),
          unit: 'ms',
          baseline: 'sign-in screen (app shell, no API call), p50',
          baselineValue: round(s.p50, 0),
          ratio: round(s.p50 / o.p50, 2),
          goal: '< 1000 ms',
          pass: o.p50 < 1000,
        },
        {
          metric: 'Overview: KPIs on screen, slowest visit',
          value: round(o.max, 0),
          unit: 'ms',
          goal: '< 1000 ms',
          pass: o.max < 1000,
        },
        { metric: 'Overview: first contentful paint, p50', value: round(f.p50, 0), unit: 'ms' },
        { metric: 'seed: time', value: round(seedMs / 1000, 1), unit: 's' },
      ],
      notes: [
        `Each visit: a new browser context (cold HTTP cache) and a range the service has not answered before, so the analytics queries run; ${events} logins + ${events} activities over 90 days.`,
        'Chromium (Debian), the service and PostgreSQL share the machine.',
      ],
    }
  } finally {
    await bdb.drop()
  }
}
