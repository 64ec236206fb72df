import type { L2Guard } from '../l2/l2-guard.js'

/**
 * While we hold a key's lock its factory is running: keep the lock alive so a slow-but-alive
 * factory is not run twice. One shared timer (not one per miss) extends every held lock each
 * lockTtl/2 and stops itself when nothing is held; a crashed holder stops extending, so
 * waiters take over after one lockTtl.
 */
export class LockKeeper {
  readonly #guard: L2Guard
  readonly #lockTtl: number
  /** Locks held while their factory runs: key → token. */
  readonly #held = new Map<string, string>()
  #timer: NodeJS.Timeout | undefined

  constructor(guard: L2Guard, lockTtl: number) {
    this.#guard = guard
    this.#lockTtl = lockTtl
  }

  hold(full: string, token: string): void {
    this.#held.set(full, token)
    if (this.#timer !== undefined) return
    this.#timer = setInterval(
      () => {
        if (this.#held.size === 0) {
          clearInterval(this.#timer)
          this.#timer = undefined
          return
        }
        for (const [k, t] of this.#held)
          void this.#guard.run('extendLock', (d) => d.extendLock(k, t, this.#lockTtl))
      },
      Math.max(10, this.#lockTtl / 2),
    )
    this.#timer.unref()
  }

  /** Stops extending `full`'s lock (its factory settled). */
  drop(full: string): void {
    this.#held.delete(full)
  }

  close(): void {
    clearInterval(this.#timer)
  }
}
