import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

// `npm run test:faults`: faults injected with real processes (private PostgreSQL and Redis,
// Strata as a child process). Files run one after another: each starts its own servers and
// load, and two at once on two cores would measure contention rather than recovery. Same
// source aliases (subpaths included) and service check as `npm test`.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
})
