import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('.', import.meta.url))
const alias = Object.fromEntries(
  readdirSync(`${root}packages`).map((name) => [
    `@strata/${name}`,
    `${root}packages/${name}/src/index.ts`,
  ]),
)

// `npm run test:faults`: faults injected with real processes (private PostgreSQL and Redis,
// Strata as a child process). Files run one after another: each starts its own servers and
// load, and two at once on two cores would measure contention rather than recovery.
export default defineConfig({
  resolve: { alias },
  test: {
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: ['default'],
  },
})
