/**
 * A bus message: origin, kind, the HLC version of the change, and its full keys / tag keys /
 * prefix and pattern. Short field names: one goes out with every write.
 */
export interface BusMessage {
  o: string
  /** 'unlock': a producer gave up its lock without a value (its factory failed); wakes waiters. */
  t: 'set' | 'del' | 'tag' | 'clear' | 'pattern' | 'unlock'
  v: number
  k?: string[]
  g?: string[]
  p?: string
  m?: string
}
