// Components the pg tests need beyond PostgreSQL itself. A missing one fails the test with the
// way to install it (as `.ci/run` does), never a skip: a skipped check proves nothing.
import { execFileSync } from 'node:child_process'

export const HYPOPG_MISSING =
  'the hypopg extension is not installed on this PostgreSQL: apt-get install postgresql-<version>-hypopg (.ci/run installs it)'

export const PG_STAT_STATEMENTS_MISSING =
  "pg_stat_statements is not preloaded on this PostgreSQL: ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements', then restart the server (.ci/run does both)"

export const PGBOUNCER_MISSING =
  'pgbouncer is not installed: apt-get install pgbouncer (.ci/run installs it)'

/** Path of a working `pgbouncer` binary, or undefined. */
export function findPgbouncer(): string | undefined {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' })
      return p
    } catch {
      /* next */
    }
  }
  return undefined
}
