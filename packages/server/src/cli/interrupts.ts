/**
 * Counts Ctrl-C presses. `npm run` and `npm start` forward the terminal's SIGINT to a child that
 * got it already from the terminal, so a signal within `windowMs` of the previous one is the
 * same press: the returned function answers its number for a new press, undefined for a copy.
 */
export function interruptCounter(
  windowMs = 500,
  now: () => number = () => performance.now(),
): () => number | undefined {
  let presses = 0
  let last = -Infinity
  return () => {
    const t = now()
    if (presses > 0 && t - last < windowMs) return undefined
    presses++
    last = t
    return presses
  }
}
