import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('.', import.meta.url))
// Tests import workspace packages from source (each export's `strata-source` file, subpaths
// such as `@strata/core/time-zone` included), so `npm test` needs no build step.
const alias = readdirSync(`${root}packages`).flatMap((name) => {
  const dir = `${root}packages/${name}/`
  const { exports = {} } = JSON.parse(readFileSync(`${dir}package.json`, 'utf8')) as {
    exports?: Record<string, { 'strata-source'?: string }>
  }
  return Object.entries(exports).flatMap(([subpath, target]) =>
    target['strata-source']
      ? [
          {
            find: new RegExp(`^@strata/${name}${subpath.slice(1)}$`),
            replacement: dir + target['strata-source'].slice(2),
          },
        ]
      : [],
  )
})

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts', 'test/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores here and in CI: more workers only adds contention on Postgres and Redis.
    maxWorkers: 2,
    reporters: ['default'],
  },
})
