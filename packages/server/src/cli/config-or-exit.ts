import { isStrataError } from '@strata/core'
import { loadConfig, type StrataConfig } from '../config.js'

/** Loads configuration, or prints one line per invalid variable and returns undefined. */
export function configOrReport(env: NodeJS.ProcessEnv = process.env): StrataConfig | undefined {
  try {
    return loadConfig(env)
  } catch (err) {
    if (isStrataError(err) && err.code === 'STRATA_CONFIG_INVALID') {
      for (const line of (err.details as { lines: string[] }).lines)
        process.stderr.write(`strata: invalid configuration: ${line}\n`)
      return undefined
    }
    throw err
  }
}
