import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

// `npm run test:scale`: the analytics exactness checks again at production-like volume (over a
// million rows seeded with COPY). Slower than `npm test`, so in a suite of its own; same source
// aliases and service check as `npm test`.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/scale/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
})
