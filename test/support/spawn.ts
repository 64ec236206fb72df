// Child processes in tests run TypeScript sources directly: tsx compiles them, and the
// `strata-source` export condition points `@strata/*` at each package's src/index.ts,
// so multi-process tests need no build step.
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Node flags for `spawn(process.execPath, [...tsNodeArgs, script])` or `fork(script, { execArgv: tsNodeArgs })`. */
export const tsNodeArgs = ['--conditions=strata-source', '--import', 'tsx']

/** Path of the CLI entry in source form. */
export const cliEntry = fileURLToPath(
  new URL('../../packages/server/src/cli/main.ts', import.meta.url),
)
