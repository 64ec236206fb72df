/**
 * A Bloom filter of key strings (16 MiB, 7 hashes: about 0.2 % false positives at 10 M keys).
 * Hand-written because it is 30 lines and needs no dependency; used to skip the database probe
 * for keys this job cannot have loaded yet.
 */
export class KeyFilter {
  readonly #bits: Uint32Array
  readonly #mask: number
  readonly #hashes: number

  constructor(log2Bits = 27, hashes = 7) {
    this.#bits = new Uint32Array(2 ** (log2Bits - 5))
    this.#mask = 2 ** log2Bits - 1
    this.#hashes = hashes
  }

  // Two FNV-1a variants, combined by double hashing (Kirsch–Mitzenmacher).
  #h(key: string): [number, number] {
    let a = 0x811c9dc5
    let b = 0x01000193
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
    }
    return [a >>> 0, (b | 1) >>> 0]
  }

  add(key: string): void {
    const [a, b] = this.#h(key)
    for (let i = 0; i < this.#hashes; i++) {
      const bit = (a + i * b) & this.#mask
      this.#bits[bit >>> 5]! |= 1 << (bit & 31)
    }
  }

  /** False: the key was certainly never added. True: it may have been. */
  mightContain(key: string): boolean {
    const [a, b] = this.#h(key)
    for (let i = 0; i < this.#hashes; i++) {
      const bit = (a + i * b) & this.#mask
      if ((this.#bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false
    }
    return true
  }
}
