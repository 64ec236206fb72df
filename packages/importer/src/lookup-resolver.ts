import { LRUCache } from 'lru-cache'
import type { Queryable } from '@strata/pg'
import { quoteIdent, type ResolvedLookup } from './catalog.js'

/**
 * Resolves one lookup column (source value → parent's `returns` value): one `= ANY($1)` query per
 * batch for the values the LRU does not hold. Misses are not cached, so a parent row created
 * while the import runs is found by later batches.
 */
export class LookupResolver {
  readonly #lookup: ResolvedLookup
  readonly #cache: LRUCache<string, string>
  readonly #sql: string
  hits = 0
  misses = 0

  constructor(lookup: ResolvedLookup, maxEntries: number) {
    this.#lookup = lookup
    this.#cache = new LRUCache({ max: maxEntries })
    const c = quoteIdent(lookup.column.name)
    const r = quoteIdent(lookup.returns.name)
    // Compare as text: the source value is text, and the cast keeps every column type usable.
    this.#sql = `SELECT ${c}::text AS k, ${r}::text AS v FROM ${lookup.sql} WHERE ${c}::text = ANY($1::text[])`
    if (
      /^(integer|bigint|smallint|text|uuid|character varying(\(\d+\))?)$/.test(
        lookup.column.sqlType,
      )
    ) {
      // Typed comparison lets Postgres use the index on the lookup column.
      const t = lookup.column.sqlType.startsWith('character varying')
        ? 'text'
        : lookup.column.sqlType
      this.#sql = `SELECT ${c}::text AS k, ${r}::text AS v FROM ${lookup.sql} WHERE ${c} = ANY($1::${t}[])`
    }
  }

  get table(): string {
    return this.#lookup.sql
  }

  /** Returns value → parent value for every key found; keys absent from the map have no parent. */
  async resolve(db: Queryable, keys: Iterable<string>): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>()
    const missingSet = new Set<string>()
    for (const k of keys) {
      if (out.has(k)) continue
      const hit = this.#cache.get(k)
      if (hit !== undefined) {
        this.hits++
        out.set(k, hit)
      } else missingSet.add(k)
    }
    const missing = [...missingSet]
    if (missing.length > 0) {
      this.misses += missing.length
      const isInt = /^(integer|bigint|smallint)$/.test(this.#lookup.column.sqlType)
      // An int-typed lookup would fail the whole query on one non-numeric key: drop those here.
      const query = isInt ? missing.filter((k) => /^[+-]?\d{1,18}$/.test(k)) : missing
      if (query.length > 0) {
        const res = await db.query<{ k: string; v: string | null }>(this.#sql, [query], {
          label: 'importer.lookup',
        })
        for (const row of res.rows) {
          out.set(row.k, row.v)
          if (row.v !== null) this.#cache.set(row.k, row.v)
        }
      }
    }
    return out
  }
}
