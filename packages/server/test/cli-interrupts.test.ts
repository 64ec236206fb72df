import { describe, expect, it } from 'vitest'
import { interruptCounter } from '../src/cli/interrupts.js'

describe('Ctrl-C presses (strata start, strata import)', () => {
  it('a SIGINT npm forwards right after the terminal’s is the same press, a later one is not', () => {
    let t = 0
    const press = interruptCounter(500, () => t)
    expect(press()).toBe(1)
    t = 5 // npm's copy of the same Ctrl-C
    expect(press()).toBeUndefined()
    t = 2_000 // the user presses again
    expect(press()).toBe(2)
    t = 2_010
    expect(press()).toBeUndefined()
  })
})
