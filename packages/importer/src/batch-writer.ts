import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import copyStreams from 'pg-copy-streams'
import { isDataError, sqlState, type Queryable, type Transaction } from '@strata/pg'
import { quoteIdent, type ResolvedTarget } from './catalog.js'
import { copyField } from './convert.js'
import { KeyFilter } from './key-filter.js'
import type { LookupResolver } from './lookup-resolver.js'
import type { Reject } from './reject-file.js'
import type { ResolvedSpec } from './spec.js'

/** A converted row on its way to the database. */
export interface PreparedRow {
  line: number
  /** Canonical text values in `columnNames` order (lookup columns: the source key until resolved). */
  values: (string | null)[]
  /** The original fields, for the reject file. */
  fields: string[]
}

export interface BatchOutcome {
  loaded: number
  skipped: number
  rejects: Reject[]
  /** Rows removed by archive mode (already written to the archive sink). */
  archived: number
}

/** Receives rows deleted in archive mode, before the batch commits (so none is ever lost). */
export interface ArchiveSink {
  write(rows: unknown[]): Promise<void>
}

function fieldOf(err: unknown, name: string): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 4; i++) {
    const v =
      (e as Record<string, unknown>)[name] ??
      (e as { details?: Record<string, unknown> }).details?.[name]
    if (typeof v === 'string') return v
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** Internal signal: the first duplicate key met by a direct insert. */
class DuplicateSeen extends Error {}

const STAGE = 'strata_import_stage'
const COPY_PIECE_CHARS = 64 * 1024
const N = '__strata_n'

/**
 * Writes one batch inside the caller's transaction: foreign-key lookups, in-batch key dedupe,
 * COPY into an ON COMMIT DROP staging table, then one set-based statement into the target. A
 * batch the database refuses for data reasons is bisected under savepoints until each bad row is
 * isolated, so the good rows of the batch still commit together with the job checkpoint.
 */
export class BatchWriter {
  readonly #spec: ResolvedSpec
  readonly #target: ResolvedTarget
  readonly #columns: string[]
  readonly #lookups: Map<number, LookupResolver>
  readonly #keyIdx: number[]
  readonly #archive: ArchiveSink | undefined
  readonly #cols: string
  readonly #statement: string
  readonly #returnsUnmatched: boolean
  readonly #returnsArchive: boolean
  /** insert/purge: COPY straight into the target (no staging), after probing existing keys. */
  readonly #direct: boolean
  readonly #probeSql: string | undefined
  readonly #keyTypes: string[]
  #probing = false
  /**
   * Keys written by this run, when the target was empty at its first batch: only keys the
   * filter may contain can already be in the table, so only those are probed. null: the table
   * had rows (or another writer showed up) — fall back to probing after the first duplicate.
   */
  #filter: KeyFilter | null | undefined
  /** Bisection steps taken (savepoint rollbacks), for stats. */
  bisections = 0

  constructor(options: {
    spec: ResolvedSpec
    target: ResolvedTarget
    columnNames: string[]
    lookups: Map<string, LookupResolver>
    archive?: ArchiveSink
  }) {
    this.#spec = options.spec
    this.#target = options.target
    this.#columns = options.columnNames
    this.#archive = options.archive
    this.#lookups = new Map()
    for (const [name, r] of options.lookups) this.#lookups.set(this.#columns.indexOf(name), r)
    this.#keyIdx = options.spec.target.key.map((k) => this.#columns.indexOf(k))
    this.#cols = this.#columns.map(quoteIdent).join(', ')
    const built = this.#buildStatement()
    this.#statement = built.sql
    this.#returnsUnmatched = built.unmatched
    this.#returnsArchive = built.archive
    const mode = this.#spec.target.mode
    const key = this.#spec.target.key
    this.#keyTypes = key.map((k) => this.#target.columns.get(k)!.sqlType)
    // Keys whose Postgres text form equals our canonical text, so probed keys compare exactly.
    const textual = this.#keyTypes.every((t) =>
      /^(integer|bigint|smallint|text|uuid|character varying(\(\d+\))?)$/.test(t),
    )
    this.#direct =
      (mode === 'insert' || mode === 'purge') &&
      (key.length === 0 || !this.#target.keyIsUnique || textual)
    if (this.#direct && key.length > 0 && this.#target.keyIsUnique) {
      const arr = this.#keyTypes.map(
        (t, i) => `$${i + 1}::${t.startsWith('character varying') ? 'text' : t}[]`,
      )
      const names = key.map((k, i) => `k${i}`)
      this.#probeSql =
        `SELECT ${key.map((k) => `t.${quoteIdent(k)}::text`).join(" || E'\\x01' || ")} AS k FROM ${this.#target.sql} t ` +
        `JOIN unnest(${arr.join(', ')}) AS u(${names.join(', ')}) ON ${key.map((k, i) => `t.${quoteIdent(k)} = u.${names[i]}`).join(' AND ')}`
    }
  }

  /** Drops the rows whose key already exists in the target, rejecting them as duplicates. */
  async #withoutExisting(
    tx: Transaction,
    rows: PreparedRow[],
    outcome: BatchOutcome,
    candidates: PreparedRow[] = rows,
  ): Promise<PreparedRow[]> {
    if (candidates.length === 0) return rows
    const existing = await this.#probe(tx, candidates)
    if (existing.size === 0) return rows
    const live: PreparedRow[] = []
    for (const row of rows) {
      const k = this.#keyIdx.map((i) => row.values[i]).join('\x01')
      if (!existing.has(k)) live.push(row)
      else
        outcome.rejects.push({
          line: row.line,
          column: this.#spec.target.key.join(','),
          code: 'STRATA_IMPORT_DUPLICATE_KEY',
          message: `a row with key (${this.#spec.target.key.join(', ')}) = (${this.#keyIdx.map((i) => row.values[i]).join(', ')}) already exists`,
          fields: row.fields,
        })
    }
    return live
  }

  /** Rows whose key already exists in the target (direct inserts: rejected as duplicates). */
  async #probe(tx: Transaction, rows: PreparedRow[]): Promise<Set<string>> {
    if (!this.#probeSql) return new Set()
    const cols: (string | null)[][] = this.#keyIdx.map(() => [])
    for (const r of rows) {
      if (this.#keyIdx.some((i) => r.values[i] === null)) continue
      this.#keyIdx.forEach((i, j) => cols[j]!.push(r.values[i]!))
    }
    if (cols[0]!.length === 0) return new Set()
    const res = await tx.query<{ k: string }>(this.#probeSql, cols, { label: 'importer.probe' })
    return new Set(res.rows.map((r) => r.k))
  }

  #buildStatement(): { sql: string; unmatched: boolean; archive: boolean } {
    const t = this.#target.sql
    const cols = this.#cols
    const key = this.#spec.target.key.map(quoteIdent)
    const nonKey = this.#columns.filter((c) => !this.#spec.target.key.includes(c)).map(quoteIdent)
    const select = `SELECT ${cols} FROM ${STAGE} ORDER BY ${N}`
    // Plain '=' (hashable; IS NOT DISTINCT FROM would force a nested loop over the batch). A row
    // with a NULL key part never conflicts, so it is never reported as unmatched.
    const match = (a: string, b: string): string =>
      key.map((k) => `${a}.${k} = ${b}.${k}`).join(' AND ')
    const unmatchedOf = (cte: string, keyed: boolean): string =>
      `SELECT s.${N} AS n FROM ${STAGE} s WHERE NOT EXISTS (SELECT 1 FROM ${cte} WHERE ${keyed ? match(cte, 's') : `${cte}.n = s.${N}`})` +
      (keyed ? key.map((k) => ` AND s.${k} IS NOT NULL`).join('') : '')
    switch (this.#spec.target.mode) {
      case 'insert':
      case 'purge':
      case 'skip-existing':
        if (key.length > 0 && this.#target.keyIsUnique)
          return {
            sql: `WITH ins AS (INSERT INTO ${t} (${cols}) ${select} ON CONFLICT (${key.join(', ')}) DO NOTHING RETURNING ${key.join(', ')}) ${unmatchedOf('ins', true)}`,
            unmatched: true,
            archive: false,
          }
        return { sql: `INSERT INTO ${t} (${cols}) ${select}`, unmatched: false, archive: false }
      case 'upsert':
        return {
          sql:
            `INSERT INTO ${t} (${cols}) ${select} ON CONFLICT (${key.join(', ')}) ` +
            (nonKey.length > 0
              ? `DO UPDATE SET ${nonKey.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
              : 'DO NOTHING'),
          unmatched: false,
          archive: false,
        }
      case 'update': {
        const set = nonKey.map((c) => `${c} = s.${c}`).join(', ')
        return {
          sql: `WITH u AS (UPDATE ${t} t SET ${set} FROM ${STAGE} s WHERE ${match('t', 's')} RETURNING s.${N} AS n) ${unmatchedOf('u', false)}`,
          unmatched: true,
          archive: false,
        }
      }
      case 'delete':
        return {
          sql: `WITH d AS (DELETE FROM ${t} t USING ${STAGE} s WHERE ${match('t', 's')} RETURNING s.${N} AS n) ${unmatchedOf('d', false)}`,
          unmatched: true,
          archive: false,
        }
      case 'archive':
        return {
          sql: `DELETE FROM ${t} t USING ${STAGE} s WHERE ${match('t', 's')} RETURNING s.${N} AS n, to_jsonb(t.*) AS row`,
          unmatched: false,
          archive: true,
        }
    }
  }

  /** Resolves lookups and dedupes keys; returns the rows to stage plus row-level rejects/skips. */
  /**
   * Swaps each lookup column's source key for the parent's value (batched `= ANY($1)`, LRU
   * cached), in place, and returns the rows without a parent as rejects. Runs before the write
   * transaction, on another connection, so it overlaps with the previous batch's write; a parent
   * deleted in between surfaces as an FK violation and is isolated by bisection.
   */
  async resolveLookups(
    db: Queryable,
    rows: PreparedRow[],
  ): Promise<{ rows: PreparedRow[]; rejects: Reject[] }> {
    const rejects: Reject[] = []
    let live = rows
    for (const [idx, resolver] of this.#lookups) {
      const keys = new Set<string>()
      for (const r of live) {
        const v = r.values[idx]
        if (v !== null && v !== undefined) keys.add(v)
      }
      if (keys.size === 0) continue
      const found = await resolver.resolve(db, keys)
      const next: PreparedRow[] = []
      const column = this.#columns[idx]!
      for (const r of live) {
        const v = r.values[idx]
        if (v === null || v === undefined) {
          next.push(r)
          continue
        }
        const parent = found.get(v)
        if (parent === undefined) {
          rejects.push({
            line: r.line,
            column,
            code: 'STRATA_IMPORT_LOOKUP_MISSING',
            message: `no row in ${resolver.table} matches "${v}"`,
            fields: r.fields,
          })
          continue
        }
        r.values[idx] = parent
        next.push(r)
      }
      live = next
    }
    return { rows: live, rejects }
  }

  /** In-batch key dedupe per mode; returns the rows to write plus row-level rejects/skips. */
  #prepare(rows: PreparedRow[]): {
    rows: PreparedRow[]
    rejects: Reject[]
    skipped: number
    superseded: number
  } {
    const rejects: Reject[] = []
    let live = rows
    let skipped = 0
    let superseded = 0
    if (this.#keyIdx.length > 0) {
      const mode = this.#spec.target.mode
      const keepLast = mode === 'upsert' || mode === 'update'
      const seen = new Map<string, number>()
      const out: (PreparedRow | undefined)[] = []
      for (const r of live) {
        const k =
          this.#keyIdx.length === 1
            ? (r.values[this.#keyIdx[0]!] ?? '\u0001null')
            : this.#keyIdx.map((i) => r.values[i] ?? '\u0001null').join('\u0000')
        const prev = seen.get(k)
        if (prev === undefined) {
          seen.set(k, out.length)
          out.push(r)
        } else if (keepLast) {
          // Last occurrence in file order wins; the earlier one counts as applied-then-overwritten.
          out[prev] = undefined
          seen.set(k, out.length)
          out.push(r)
          superseded++
        } else if (mode === 'insert' || mode === 'purge') {
          rejects.push({
            line: r.line,
            column: this.#spec.target.key.join(','),
            code: 'STRATA_IMPORT_DUPLICATE_KEY',
            message: `duplicate key (${this.#spec.target.key.join(', ')}) = (${this.#keyIdx.map((i) => r.values[i]).join(', ')}) earlier in the file`,
            fields: r.fields,
          })
        } else skipped++
      }
      live = out.filter((r): r is PreparedRow => r !== undefined)
    }
    return { rows: live, rejects, skipped, superseded }
  }

  /**
   * COPY in text format; `base` adds the row ordinal column used to map results back. The text is
   * produced in ~64 KiB pieces as the socket takes them, not as one string for the whole batch:
   * a 10k-row batch otherwise held a 160k-node concatenation tree, the flattened text and its
   * UTF-8 copy at once, all of it long-lived enough to be promoted by the GC.
   */
  async #copy(
    tx: Transaction,
    rows: PreparedRow[],
    sql: string,
    base: number | null,
  ): Promise<void> {
    function* pieces(): Generator<string> {
      let text = ''
      for (let i = 0; i < rows.length; i++) {
        const vals = rows[i]!.values
        let line = copyField(vals[0] ?? null)
        for (let j = 1; j < vals.length; j++) line += '\t' + copyField(vals[j]!)
        text += base === null ? line + '\n' : `${line}\t${base + i}\n`
        if (text.length >= COPY_PIECE_CHARS) {
          yield text
          text = ''
        }
      }
      if (text.length > 0) yield text
    }
    const stream = tx.client.query(copyStreams.from(sql))
    await pipeline(Readable.from(pieces(), { objectMode: false }), stream)
  }

  /** Writes `rows` (already converted) in `tx`. `purge`: empty the target first (first batch only). */
  async write(
    tx: Transaction,
    rows: PreparedRow[],
    options: { purge?: boolean } = {},
  ): Promise<BatchOutcome> {
    const prep = this.#prepare(rows)
    const outcome: BatchOutcome = {
      loaded: prep.superseded,
      skipped: prep.skipped,
      rejects: prep.rejects,
      archived: 0,
    }
    if (options.purge)
      await tx.query(`DELETE FROM ${this.#target.sql}`, [], { label: 'importer.purge' })
    if (prep.rows.length === 0) return outcome
    if (this.#direct) {
      if (this.#filter === undefined && this.#probeSql) {
        const { rows: e } = await tx.query<{ empty: boolean }>(
          `SELECT NOT EXISTS (SELECT 1 FROM ${this.#target.sql}) AS empty`,
          [],
          { label: 'importer.probe' },
        )
        this.#filter = e[0]?.empty ? new KeyFilter() : null
      }
      const keyOf = (r: PreparedRow): string => this.#keyIdx.map((i) => r.values[i]).join('\x01')
      // Keys are probed only when they may exist: with the filter, the few keys it may hold;
      // without it, every key once a duplicate has been seen (a clean load pays nothing; the
      // first unique violation switches probing on, see below, instead of bisecting).
      const live = this.#filter
        ? await this.#withoutExisting(
            tx,
            prep.rows,
            outcome,
            prep.rows.filter((r) => this.#filter!.mightContain(keyOf(r))),
          )
        : this.#probing
          ? await this.#withoutExisting(tx, prep.rows, outcome)
          : prep.rows
      if (live.length === 0) return outcome
      await tx.query('SAVEPOINT strata_probe', [], { label: 'importer.write' })
      try {
        await this.#attempt(tx, live, 0, outcome, true)
        await tx.query('RELEASE SAVEPOINT strata_probe', [], { label: 'importer.write' })
      } catch (err) {
        if (!(err instanceof DuplicateSeen)) throw err
        // A duplicate the filter did not predict (another writer) or the first one without a
        // filter: from now on probe every key, and redo this batch with the probe.
        await tx.query('ROLLBACK TO SAVEPOINT strata_probe', [], { label: 'importer.write' })
        await tx.query('RELEASE SAVEPOINT strata_probe', [], { label: 'importer.write' })
        this.#probing = true
        this.#filter = null
        const rest = await this.#withoutExisting(tx, live, outcome)
        if (rest.length > 0) await this.#attempt(tx, rest, 0, outcome, true)
      }
      // Over-inclusive is safe (a rolled-back batch only causes extra probes later).
      if (this.#filter) for (const r of live) this.#filter.add(keyOf(r))
      return outcome
    }
    await tx.query(
      `CREATE TEMP TABLE ${STAGE} ON COMMIT DROP AS SELECT ${this.#cols}, 0::int AS ${N} FROM ${this.#target.sql} WITH NO DATA`,
      [],
      { label: 'importer.stage' },
    )
    await this.#attempt(tx, prep.rows, 0, outcome, true)
    return outcome
  }

  async #attempt(
    tx: Transaction,
    rows: PreparedRow[],
    base: number,
    outcome: BatchOutcome,
    fresh: boolean,
  ): Promise<void> {
    await tx.query('SAVEPOINT strata_batch', [], { label: 'importer.write' })
    try {
      if (this.#direct) {
        await this.#copy(tx, rows, `COPY ${this.#target.sql} (${this.#cols}) FROM STDIN`, null)
        await tx.query('RELEASE SAVEPOINT strata_batch', [], { label: 'importer.write' })
        outcome.loaded += rows.length
        return
      }
      if (!fresh) await tx.query(`TRUNCATE ${STAGE}`, [], { label: 'importer.stage' })
      await this.#copy(tx, rows, `COPY ${STAGE} (${this.#cols}, ${N}) FROM STDIN`, base)
      const res = await tx.query<{ n: number; row?: unknown }>(this.#statement, [], {
        label: 'importer.write',
      })
      await tx.query('RELEASE SAVEPOINT strata_batch', [], { label: 'importer.write' })
      if (this.#returnsArchive) {
        if (res.rows.length > 0) await this.#archive?.write(res.rows.map((r) => r.row))
        outcome.archived += res.rows.length
        outcome.loaded += res.rows.length
        outcome.skipped += rows.length - res.rows.length
      } else if (this.#returnsUnmatched) {
        const unmatched = res.rows.length
        const mode = this.#spec.target.mode
        if (mode === 'insert' || mode === 'purge') {
          for (const r of res.rows) {
            const row = rows[r.n - base]!
            outcome.rejects.push({
              line: row.line,
              column: this.#spec.target.key.join(','),
              code: 'STRATA_IMPORT_DUPLICATE_KEY',
              message: `a row with key (${this.#spec.target.key.join(', ')}) = (${this.#keyIdx.map((i) => row.values[i]).join(', ')}) already exists`,
              fields: row.fields,
            })
          }
        } else outcome.skipped += unmatched
        outcome.loaded += rows.length - unmatched
      } else outcome.loaded += rows.length
    } catch (err) {
      await tx
        .query('ROLLBACK TO SAVEPOINT strata_batch', [], { label: 'importer.write' })
        .catch(() => {
          throw err
        })
      await tx.query('RELEASE SAVEPOINT strata_batch', [], { label: 'importer.write' })
      if (!isDataError(err)) throw err
      // Direct insert, no probing yet, a unique violation on the first try: let write() switch
      // probing on and redo the batch (cheaper than bisecting around every duplicate).
      if (fresh && this.#direct && !this.#probing && this.#probeSql && sqlState(err) === '23505')
        throw new DuplicateSeen()
      this.bisections++
      if (rows.length === 1) {
        const row = rows[0]!
        const state = sqlState(err)
        const detail = fieldOf(err, 'detail')
        const msg = err instanceof Error ? err.message : String(err)
        outcome.rejects.push({
          line: row.line,
          column: fieldOf(err, 'column') ?? null,
          code: state === '23505' ? 'STRATA_IMPORT_DUPLICATE_KEY' : 'STRATA_IMPORT_DB_REJECTED',
          message: `[${state}] ${msg}${detail ? ` (${detail})` : ''}`,
          fields: row.fields,
        })
        return
      }
      const mid = rows.length >> 1
      await this.#attempt(tx, rows.slice(0, mid), base, outcome, false)
      await this.#attempt(tx, rows.slice(mid), base + mid, outcome, false)
    }
  }
}
