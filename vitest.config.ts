import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('.', import.meta.url))
// Tests import workspace packages from source, so `npm test` needs no build step.
const alias = Object.fromEntries(
  readdirSync(`${root}packages`).map((name) => [
    `@strata/${name}`,
    `${root}packages/${name}/src/index.ts`,
  ]),
)

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores here and in CI: more workers only adds contention on Postgres and Redis.
    maxWorkers: 2,
    reporters: ['default'],
  },
})
