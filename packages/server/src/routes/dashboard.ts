import { existsSync } from 'node:fs'
import { resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { serverErrors } from '../errors.js'

export interface DashboardRoutesOptions {
  /** Folder with the built dashboard (index.html + assets/). @defaultValue defaultDashboardDir() */
  dir?: string
}

/**
 * The repository's packages/dashboard/dist, found from this module's location (src/routes or
 * dist/routes alike). The server does not depend on @strata/dashboard: it only serves its files.
 */
export function defaultDashboardDir(): string {
  return fileURLToPath(new URL('../../../dashboard/dist/', import.meta.url))
}

const IMMUTABLE = 'public, max-age=31536000, immutable'
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The app only talks to this origin; inline scripts are never needed.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
} as const

/**
 * `GET /dashboard/*`: the built single-page app. Hashed files under `assets/` are cached for a
 * year (immutable); everything else, index.html above all, is revalidated on every load. A
 * path without a file extension that is no file is a client-side route: it gets index.html.
 * While the folder holds no build, every dashboard URL answers 503 STRATA_DASHBOARD_NOT_BUILT;
 * a build made later is served without a restart.
 */
export default async function dashboardRoutes(
  app: FastifyInstance,
  opts: DashboardRoutesOptions = {},
): Promise<void> {
  const root = resolve(opts.dir ?? defaultDashboardDir())
  const index = resolve(root, 'index.html')
  const assets = resolve(root, 'assets') + sep

  // The service's root has no page of its own: someone opening http://localhost:3000 wants the
  // dashboard, not a 404.
  app.get('/', async (_request, reply) => reply.redirect('/dashboard/', 302))

  // `/dashboard?x=1` → `/dashboard/?x=1`: relative asset URLs need the trailing slash.
  app.get('/dashboard', async (request, reply) => {
    const q = request.url.indexOf('?')
    return reply.redirect(`/dashboard/${q === -1 ? '' : request.url.slice(q)}`, 302)
  })

  if (!existsSync(index))
    app.log.warn({ dir: root }, 'dashboard not built: /dashboard answers 503 until it is')

  await app.register(
    async (scope) => {
      await scope.register(fastifyStatic, {
        root,
        prefix: '/',
        // Our own Cache-Control below; send's default (max-age=0) would fight it.
        cacheControl: false,
        dotfiles: 'ignore',
        index: ['index.html'],
        // The build writes .br and .gz next to each text file (scripts/compress.mjs).
        preCompressed: true,
        setHeaders(res, sent) {
          const path = sent.replace(/\.(br|gz)$/, '')
          res.setHeader('cache-control', path.startsWith(assets) ? IMMUTABLE : 'no-cache')
          // Caches must keep the encodings apart (@fastify/static does not say so itself).
          res.setHeader('vary', 'Accept-Encoding')
          if (path.endsWith('.html'))
            for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
        },
      })

      // Inside this scope, a 404 under /dashboard/ is either a client-side route (→ index.html)
      // or a missing file (→ our usual 404: a stale asset must not come back as HTML).
      scope.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
        if (!existsSync(index))
          throw serverErrors.create('STRATA_DASHBOARD_NOT_BUILT', {
            message: `The dashboard is not built: no index.html in ${root}. Run \`npm run build\` (or set STRATA_DASHBOARD_DIR)`,
            details: { dir: root },
          })
        const path = request.url.split('?')[0]!
        const last = path.slice(path.lastIndexOf('/') + 1)
        if ((request.method === 'GET' || request.method === 'HEAD') && !last.includes('.'))
          return reply.sendFile('index.html')
        throw serverErrors.create('STRATA_NOT_FOUND', { message: `No file ${path}` })
      })
    },
    { prefix: '/dashboard' },
  )
}
