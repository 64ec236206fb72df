// Fixture for the dashboard's browser tests: a real service (startService) on a fresh database,
// seeded with two projects' analytics and one finished import job with a reject, plus a
// Chromium (Debian's, driven by playwright-core) and helpers for axe checks and screenshots.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ProjectStore, seedEvents } from '@strata/events'
import { loadConfig, startService, type RunningService } from '@strata/server'
import { chromium, type Browser, type Page } from 'playwright-core'
import pino from 'pino'
import { createTestDatabase, type TestDatabase } from '../../../../test/support/pg.js'

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const BUILT_DIR = join(REPO_ROOT, 'packages/dashboard/dist')
/** The build under test: the server's own variable when set, else the workspace's dist. */
export const DIST_DIR = process.env.STRATA_DASHBOARD_DIR || BUILT_DIR
export const SCREENSHOT_DIR = join(REPO_ROOT, 'docs/screenshots')
export const OPERATOR_TOKEN = 'e2e-operator-token-0123456789abcdef'

/** Debian's Chromium; CI installs it (`.ci/run`), nothing is downloaded. */
export const CHROMIUM_PATH = '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** The user whose login is the most recent one in project A, with a known activity history. */
export const TIMELINE_USER = 'e2e-alice'
export const TIMELINE_ACTIVITIES = 60

export interface SeededProject {
  id: string
  name: string
  adminKey: string
  writeKey: string
}

export interface SeededServer {
  url: string
  service: RunningService
  a: SeededProject
  b: SeededProject
  importJobId: string
  /** GET an API path with a bearer token; throws on a non-2xx answer. */
  api<T = any>(path: string, token?: string): Promise<T>
  stop(): Promise<void>
}

const execFileP = promisify(execFile)

/** Builds the dashboard when its dist is missing, so `npm test` alone works after `npm ci`. */
export async function ensureDashboardBuilt(): Promise<void> {
  if (existsSync(join(DIST_DIR, 'index.html'))) return
  if (DIST_DIR !== BUILT_DIR)
    throw new Error(`STRATA_DASHBOARD_DIR=${DIST_DIR} has no index.html (build it first)`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  try {
    await execFileP(npm, ['run', 'build', '-w', '@strata/dashboard'], {
      cwd: REPO_ROOT,
      timeout: 150_000,
      maxBuffer: 16 * 1024 * 1024,
    })
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string }
    throw new Error(`dashboard build failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
  if (!existsSync(join(DIST_DIR, 'index.html')))
    throw new Error(`dashboard build produced no ${join(DIST_DIR, 'index.html')}`)
}

/** Chromium, or a clear failure (never a skip) when it is not installed. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: the dashboard's browser tests need Debian's chromium ` +
        '(apt-get install -y chromium; .ci/run installs it)',
    )
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 })
}

async function waitForImport(
  url: string,
  id: string,
): Promise<{ status: string; counts: { rejected: number } }> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const res = await fetch(`${url}/v1/imports/${id}`, {
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    })
    const { job } = (await res.json()) as { job: { status: string; counts: { rejected: number } } }
    if (!['queued', 'running'].includes(job.status)) return job
    if (Date.now() > deadline) throw new Error(`import ${id} still ${job.status} after 20 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function startSeededServer(): Promise<SeededServer> {
  const tdb: TestDatabase = await createTestDatabase('dash')
  const importDir = await mkdtemp(join(tmpdir(), 'strata-e2e-imports-'))
  let service: RunningService | undefined
  try {
    // From environment names (not StrataConfig fields) so the fixture follows the documented
    // variables; no REDIS_URL: an L1-only cache that no other test file shares.
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      STRATA_ADMIN_TOKEN: OPERATOR_TOKEN,
      STRATA_DASHBOARD_DIR: DIST_DIR,
      STRATA_IMPORT_DIR: importDir,
      STRATA_DATA_DIR: importDir,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
    })
    service = await startService(config, pino({ level: 'silent' }))
    const url = service.url
    const store = new ProjectStore(service.db)
    // One after the other: A is the first project listed (the operator's default).
    const created = [await store.createProject('Acme (A)'), await store.createProject('Beta (B)')]
    const [a, b] = created.map((c): SeededProject => ({
      id: c.project.id,
      name: c.project.name,
      adminKey: c.keys.admin,
      writeKey: c.keys.write,
    })) as [SeededProject, SeededProject]

    // A: a few thousand skewed logins and activities over the last 14 days; B: a handful.
    await seedEvents(service.db, { projectId: a.id, logins: 3000, activities: 2000, days: 14 })
    await seedEvents(service.db, {
      projectId: b.id,
      logins: 40,
      activities: 20,
      days: 14,
      users: 10,
      seed: 2,
    })

    // Through the real write path: the newest login of A (so it heads Recent logins) and a known
    // activity history for its user, longer than one page of the timeline.
    const now = Date.now()
    const events = [
      {
        type: 'login',
        messageId: 'e2e-alice-login',
        userId: TIMELINE_USER,
        email: 'alice@example.com',
        method: 'google',
        success: true,
        deviceType: 'desktop',
        timestamp: new Date(now - 5_000).toISOString(),
      },
      ...Array.from({ length: TIMELINE_ACTIVITIES }, (_, i) => ({
        type: 'activity',
        messageId: `e2e-alice-act-${i}`,
        userId: TIMELINE_USER,
        action: ['view', 'update', 'create'][i % 3],
        entityType: 'document',
        entityId: `doc-${i}`,
        timestamp: new Date(now - 60_000 * (i + 1)).toISOString(),
      })),
    ]
    for (let i = 0; i < events.length; i += 100) {
      const res = await fetch(`${url}/v1/events/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.writeKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: events.slice(i, i + 100) }),
      })
      if (res.status !== 202) throw new Error(`ingest failed: ${res.status} ${await res.text()}`)
    }

    // One finished import with one rejected row (a bad email), so Imports has a job with rejects.
    await service.db.query(
      'CREATE TABLE e2e_contacts (id int PRIMARY KEY, email text NOT NULL)',
      [],
      { label: 'e2e' },
    )
    const spec = {
      source: { format: 'csv', header: true },
      target: { table: 'e2e_contacts', mode: 'insert', key: ['id'] },
      columns: {
        id: { type: 'int', required: true },
        email: { type: 'email', required: true },
      },
      errors: { maxErrorRate: 1 },
    }
    const csv = 'id,email\n1,ann@example.com\n2,not-an-email\n3,bob@example.com\n4,cy@example.com\n'
    const res = await fetch(`${url}/v1/imports?spec=${encodeURIComponent(JSON.stringify(spec))}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'text/csv' },
      body: csv,
    })
    if (res.status !== 202) throw new Error(`import failed: ${res.status} ${await res.text()}`)
    const importJobId = ((await res.json()) as { job: { id: string } }).job.id
    const job = await waitForImport(url, importJobId)
    if (job.status !== 'completed' || job.counts.rejected !== 1)
      throw new Error(`import should complete with 1 reject: ${JSON.stringify(job)}`)

    const running = service
    return {
      url,
      service: running,
      a,
      b,
      importJobId,
      async api<T = any>(path: string, token = OPERATOR_TOKEN): Promise<T> {
        const r = await fetch(new URL(path, url), { headers: { authorization: `Bearer ${token}` } })
        if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`)
        return (await r.json()) as T
      },
      async stop() {
        await running.stop()
        await tdb.drop()
        await rm(importDir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await service?.stop().catch(() => {})
    await tdb.drop().catch(() => {})
    await rm(importDir, { recursive: true, force: true })
    throw err
  }
}

// axe-core's browser bundle, injected into the page as a script (never run in Node).
let axeSource: string | undefined
const require = createRequire(import.meta.url)

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: unknown[]; failureSummary?: string }[]
}

/** WCAG 2 A/AA violations of serious or critical impact on the current page, formatted. */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8')
  // Evaluated through the DevTools protocol, which the app's strict CSP does not block (a
  // <script> tag would be).
  if (!(await page.evaluate('typeof window.axe === "object"')))
    await page.evaluate(`${axeSource}\n;undefined`)
  const violations = (await page.evaluate(`window.axe
    .run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] }, resultTypes: ['violations'] })
    .then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })))`)) as AxeViolation[]
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.impact} ${v.id} (${v.help}): ` +
        v.nodes
          .slice(0, 5)
          .map((n) => `${JSON.stringify(n.target)} ${n.failureSummary?.replace(/\s+/g, ' ') ?? ''}`)
          .join('; '),
    )
}

/**
 * Screenshots go to a temporary folder on every run (so the code path is exercised in CI
 * without touching the tree) and are copied to docs/screenshots with STRATA_SCREENSHOTS=1.
 */
export class Screenshots {
  readonly publish = process.env.STRATA_SCREENSHOTS === '1'
  #dir: string | undefined
  readonly taken: string[] = []

  async take(page: Page, name: string): Promise<void> {
    this.#dir ??= await mkdtemp(join(tmpdir(), 'strata-e2e-shots-'))
    const file = join(this.#dir, `${name}.png`)
    await page.screenshot({ path: file, animations: 'disabled', caret: 'hide' })
    this.taken.push(name)
    if (this.publish) {
      await mkdir(SCREENSHOT_DIR, { recursive: true })
      await copyFile(file, join(SCREENSHOT_DIR, `${name}.png`))
    }
  }

  async cleanup(): Promise<void> {
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true })
  }
}
