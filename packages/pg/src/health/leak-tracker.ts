/** A client checked out (withClient / transaction) for longer than the leak threshold. */
export interface LeakReport {
  /** Backend pid of the held connection (from pg's client). */
  pid: number | undefined
  label: string
  heldMs: number
  acquiredAt: string
  /**
   * Where the client was acquired (the caller's frames), when stack capture is on
   * (`health.leakStacks` / DATABASE_LEAK_STACKS=true); otherwise undefined.
   */
  stack: string | undefined
}

interface Checkout {
  at: number
  label: string
  /** An Error created at acquire time; its stack is only formatted when a leak is reported. */
  site: Error | undefined
  pid: number | undefined
}

/**
 * Tracks checked-out clients of the transaction/withClient paths (the plain `db.query` path
 * releases in the same callback, it cannot leak). Cost per checkout: one Map set and delete;
 * with stacks on, one `new Error()` whose stack string V8 formats lazily (only if reported).
 */
export class LeakTracker {
  readonly thresholdMs: number
  readonly stacks: boolean
  readonly #held = new Map<object, Checkout>()

  constructor(thresholdMs: number, stacks: boolean) {
    this.thresholdMs = thresholdMs
    this.stacks = stacks
  }

  acquired(client: object, label: string, site?: Error): void {
    const pid = (client as { processID?: number }).processID
    this.#held.set(client, {
      at: Date.now(),
      label,
      pid: typeof pid === 'number' ? pid : undefined,
      site,
    })
  }

  released(client: object): void {
    this.#held.delete(client)
  }

  /** Clients held longer than `minHeldMs` (default: the leak threshold), longest first. */
  leaks(minHeldMs = this.thresholdMs): LeakReport[] {
    const now = Date.now()
    const out: LeakReport[] = []
    for (const c of this.#held.values()) {
      const heldMs = now - c.at
      if (heldMs < minHeldMs) continue
      out.push({
        pid: c.pid,
        label: c.label,
        heldMs,
        acquiredAt: new Date(c.at).toISOString(),
        stack: c.site?.stack?.split('\n').slice(1).join('\n'),
      })
    }
    return out.sort((a, b) => b.heldMs - a.heldMs)
  }

  get held(): number {
    return this.#held.size
  }
}
