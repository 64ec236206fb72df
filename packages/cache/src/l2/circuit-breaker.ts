export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * Consecutive-failure circuit breaker around L2. Hand-written (a dozen lines) because the
 * usual libraries (opossum) wrap every call in a promise and timer, which the L1-hit path
 * cannot afford; here a closed breaker costs one property read.
 */
export class CircuitBreaker {
  state: BreakerState = 'closed'
  #failures = 0
  #openedAt = 0
  #probing = false
  readonly #threshold: number
  readonly #resetAfter: number
  readonly #onChange: (state: BreakerState) => void

  constructor(threshold: number, resetAfter: number, onChange: (state: BreakerState) => void) {
    this.#threshold = threshold
    this.#resetAfter = resetAfter
    this.#onChange = onChange
  }

  /** May an L2 call go out now? In half-open, exactly one probe is let through. */
  allow(): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open') {
      if (Date.now() - this.#openedAt < this.#resetAfter) return false
      this.#set('half-open')
    }
    if (this.#probing) return false
    this.#probing = true
    return true
  }

  success(): void {
    this.#failures = 0
    this.#probing = false
    if (this.state !== 'closed') this.#set('closed')
  }

  failure(): void {
    this.#probing = false
    if (this.state === 'half-open' || ++this.#failures >= this.#threshold) {
      this.#openedAt = Date.now()
      this.#failures = 0
      if (this.state !== 'open') this.#set('open')
    }
  }

  #set(state: BreakerState): void {
    this.state = state
    this.#onChange(state)
  }
}
