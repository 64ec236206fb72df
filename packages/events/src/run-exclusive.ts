import { isStrataError } from '@strata/core'
import type { LockProvider } from '@strata/lock'

// Short, and extended by `using`'s watchdog while the run lasts: a holder that dies frees the
// key within this long, not after a whole maintenance interval.
const LOCK_TTL = '30s'

/**
 * Runs periodic maintenance (`fn`) on one instance at a time. With `locks`, takes `key` first
 * and returns null at once, without waiting, when another instance holds it; the lock is
 * released when `fn` settles. Without `locks`, runs `fn` directly.
 */
export async function runExclusive<T>(
  locks: LockProvider | undefined,
  key: string,
  fn: () => Promise<T>,
): Promise<T | null> {
  if (!locks) return fn()
  let acquired = false
  try {
    return await locks.using(
      key,
      LOCK_TTL,
      () => {
        acquired = true
        return fn()
      },
      { wait: 0 },
    )
  } catch (err) {
    if (!acquired && isStrataError(err) && err.code === 'STRATA_LOCK_NOT_ACQUIRED') return null
    throw err
  }
}
