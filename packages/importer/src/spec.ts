import { isObject, pgTextProblem } from '@strata/core'
import { isTimeZone } from '@strata/core/time-zone'
import { importErrors } from './errors.js'
import { importDefaults } from './options.js'

export type CsvEncoding = 'utf8' | 'latin1'

export interface CsvSourceSpec {
  format: 'csv'
  /** File path; relative paths resolve against `baseDir` (the spec file's folder). */
  path: string
  /** First record holds the column names. @defaultValue true */
  header?: boolean
  /** @defaultValue ',' */
  delimiter?: string
  /** @defaultValue '"' */
  quote?: string
  /** @defaultValue same as quote ("" inside quotes) */
  escape?: string
  /** @defaultValue 'utf8' */
  encoding?: CsvEncoding
  /** Gunzip the input; 'auto' looks at the extension and the magic bytes. @defaultValue 'auto' */
  gzip?: boolean | 'auto'
}

export interface NdjsonSourceSpec {
  format: 'ndjson'
  path: string
  /** @defaultValue 'auto' */
  gzip?: boolean | 'auto'
  /** Longer lines are rejected. @defaultValue 16 MiB */
  maxLineBytes?: number
}

export interface PostgresSourceSpec {
  format: 'postgres'
  /** A read-only SELECT; read through a server-side cursor. */
  query: string
  params?: unknown[]
  /** Connection string of the source database; absent: the target database. */
  url?: string
}

export type SourceSpec = CsvSourceSpec | NdjsonSourceSpec | PostgresSourceSpec

export type TargetMode =
  'insert' | 'upsert' | 'skip-existing' | 'update' | 'delete' | 'archive' | 'purge'

export interface TargetSpec {
  table: string
  /** Schema of the table. @defaultValue 'public' */
  schema?: string
  /** @defaultValue 'insert' */
  mode?: TargetMode
  /** Key columns (target names); required by every mode but insert and purge. */
  key?: string[]
  /** archive mode: the NDJSON file that receives the deleted rows. */
  archiveFile?: string
}

export type ColumnType =
  | 'text'
  | 'int'
  | 'bigint'
  | 'numeric'
  | 'bool'
  | 'date'
  | 'timestamp'
  | 'uuid'
  | 'email'
  | 'json'
  | 'enum'

export type TransformFn = (value: string | null, row: Record<string, unknown>) => unknown

export type TransformSpec =
  | 'trim'
  | 'lower'
  | 'upper'
  | { regex: string; flags?: string; replace: string }
  | { map: Record<string, string | null>; default?: 'keep' | 'null' }
  | TransformFn

export interface LookupSpec {
  table: string
  schema?: string
  column: string
  returns: string
}

export interface ColumnSpec {
  /** Source field (CSV header name, 0-based index, or NDJSON property). @defaultValue the target column name */
  from?: string | number
  /** @defaultValue 'text' */
  type?: ColumnType
  required?: boolean
  /** Used when the value is empty/absent (before `required` is checked). */
  default?: string | number | boolean | null
  transform?: TransformSpec | TransformSpec[]
  lookup?: LookupSpec
  /** enum: the allowed values. */
  values?: string[]
  /** date/timestamp input formats, tried in order, e.g. 'DD/MM/YYYY', 'YYYY-MM-DD HH:mm:ss'. ISO 8601 is always accepted. */
  formats?: string[]
  /** timestamp: IANA zone for values without an offset. @defaultValue 'UTC' */
  tz?: string
}

export interface ErrorsSpec {
  /** Above this share of rejected rows the job pauses. @defaultValue 0.1 */
  maxErrorRate?: number
  /** CSV reject file; relative to `baseDir`. */
  rejectFile?: string
}

export interface BatchSpec {
  /** Rows in the first batch. @defaultValue 1000 */
  initial?: number
  /** @defaultValue 100 */
  min?: number
  /** @defaultValue 10000 */
  max?: number
  /** Batch duration the size adapts toward. @defaultValue 5000 */
  targetMs?: number
  /**
   * A batch also closes once its rows hold this many characters of source text, whatever the
   * row count: wide rows then cannot multiply the memory of a batch. @defaultValue 1 MiB
   */
  maxBytes?: number
}

export interface ImportSpec {
  source: SourceSpec
  target: TargetSpec
  columns: Record<string, ColumnSpec>
  errors?: ErrorsSpec
  batch?: BatchSpec
  workers?: number
}

/** A validated spec with every default applied. */
export interface ResolvedSpec {
  source: SourceSpec
  target: Required<Pick<TargetSpec, 'table' | 'schema' | 'mode'>> & {
    key: string[]
    archiveFile?: string
  }
  columns: Record<string, ColumnSpec & { type: ColumnType; transforms: TransformSpec[] }>
  errors: { maxErrorRate: number; rejectFile?: string }
  batch: Required<BatchSpec>
  workers: number
}

const MODES: TargetMode[] = [
  'insert',
  'upsert',
  'skip-existing',
  'update',
  'delete',
  'archive',
  'purge',
]
const TYPES: ColumnType[] = [
  'text',
  'int',
  'bigint',
  'numeric',
  'bool',
  'date',
  'timestamp',
  'uuid',
  'email',
  'json',
  'enum',
]

function fail(field: string, problem: string): never {
  throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
    message: `import spec: ${field} ${problem}`,
    details: { field, problem },
  })
}

function str(v: unknown, field: string, opts: { optional?: boolean } = {}): string | undefined {
  if (v === undefined && opts.optional) return undefined
  if (typeof v !== 'string' || v.length === 0) fail(field, 'must be a non-empty string')
  if (v.includes('\0')) fail(field, 'must not contain NUL bytes')
  return v
}

function char(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length !== 1) fail(field, 'must be a single character')
  if (v === '\n' || v === '\r') fail(field, 'must not be a line break')
  return v
}

function posInt(v: unknown, field: string, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    fail(field, 'must be a positive integer')
  return v
}

/** Nesting a spec may have; only `source.params` takes arbitrary JSON. */
const MAX_SPEC_DEPTH = 32

/**
 * The spec is stored as jsonb: every string in it (keys included) must be text PostgreSQL takes
 * (no NUL, no unpaired surrogate), and its nesting is bounded so that copying it for storage
 * cannot overflow the stack. Fails naming the first offending field.
 */
function checkStorable(value: unknown, field: string, depth = 0): void {
  if (typeof value === 'string') {
    const problem = pgTextProblem(value)
    if (problem) fail(field, problem)
    return
  }
  if (typeof value !== 'object' || value === null) return
  if (depth >= MAX_SPEC_DEPTH) fail(field, `nests deeper than ${MAX_SPEC_DEPTH} levels`)
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkStorable(v, `${field}[${i}]`, depth + 1))
    return
  }
  for (const [k, v] of Object.entries(value)) {
    const problem = pgTextProblem(k)
    if (problem) fail(field || 'spec', `has a key that ${problem}`)
    checkStorable(v, field ? `${field}.${k}` : k, depth + 1)
  }
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], field: string): void {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k))
      fail(`${field}.${k}`, `is not a known option (known: ${allowed.join(', ')})`)
}

function validateSource(v: unknown): SourceSpec {
  if (!isObject(v)) fail('source', 'must be an object')
  const format = v.format
  if (format === 'csv') {
    checkKeys(
      v,
      ['format', 'path', 'header', 'delimiter', 'quote', 'escape', 'encoding', 'gzip'],
      'source',
    )
    str(v.path, 'source.path')
    if (v.header !== undefined && typeof v.header !== 'boolean')
      fail('source.header', 'must be a boolean')
    const delimiter = char(v.delimiter, 'source.delimiter')
    const quote = char(v.quote, 'source.quote')
    char(v.escape, 'source.escape')
    if (delimiter !== undefined && delimiter === (quote ?? '"'))
      fail('source.delimiter', 'must differ from source.quote')
    if (v.encoding !== undefined && v.encoding !== 'utf8' && v.encoding !== 'latin1')
      fail('source.encoding', "must be 'utf8' or 'latin1'")
    if (v.gzip !== undefined && typeof v.gzip !== 'boolean' && v.gzip !== 'auto')
      fail('source.gzip', "must be true, false or 'auto'")
    return { ...(v as unknown as CsvSourceSpec) }
  }
  if (format === 'ndjson') {
    checkKeys(v, ['format', 'path', 'gzip', 'maxLineBytes'], 'source')
    str(v.path, 'source.path')
    if (v.gzip !== undefined && typeof v.gzip !== 'boolean' && v.gzip !== 'auto')
      fail('source.gzip', "must be true, false or 'auto'")
    posInt(v.maxLineBytes, 'source.maxLineBytes', importDefaults.maxLineBytes)
    return { ...(v as unknown as NdjsonSourceSpec) }
  }
  if (format === 'postgres') {
    checkKeys(v, ['format', 'query', 'params', 'url'], 'source')
    const q = str(v.query, 'source.query')!
    if (!/^\s*(select|with|values|table)\b/i.test(q))
      fail('source.query', 'must be a SELECT statement')
    if (v.params !== undefined && !Array.isArray(v.params))
      fail('source.params', 'must be an array')
    str(v.url, 'source.url', { optional: true })
    return { ...(v as unknown as PostgresSourceSpec) }
  }
  return fail('source.format', "must be 'csv', 'ndjson' or 'postgres'")
}

function validateTransform(t: unknown, field: string): TransformSpec {
  if (typeof t === 'function') return t as TransformFn
  if (t === 'trim' || t === 'lower' || t === 'upper') return t
  if (isObject(t) && 'regex' in t) {
    checkKeys(t, ['regex', 'flags', 'replace'], field)
    const pattern = str(t.regex, `${field}.regex`)!
    if (typeof t.replace !== 'string') fail(`${field}.replace`, 'must be a string')
    if (t.flags !== undefined && (typeof t.flags !== 'string' || !/^[gimsuy]*$/.test(t.flags)))
      fail(`${field}.flags`, 'must be regex flags (g, i, m, s, u, y)')
    try {
      new RegExp(pattern, t.flags as string | undefined)
    } catch (err) {
      fail(`${field}.regex`, `is not a valid regular expression: ${(err as Error).message}`)
    }
    return t as TransformSpec
  }
  if (isObject(t) && 'map' in t) {
    checkKeys(t, ['map', 'default'], field)
    if (!isObject(t.map)) fail(`${field}.map`, 'must be an object of value → replacement')
    for (const [k, val] of Object.entries(t.map))
      if (val !== null && typeof val !== 'string')
        fail(`${field}.map.${k}`, 'must be a string or null')
    if (t.default !== undefined && t.default !== 'keep' && t.default !== 'null')
      fail(`${field}.default`, "must be 'keep' or 'null'")
    return t as TransformSpec
  }
  return fail(field, "must be 'trim', 'lower', 'upper', {regex, replace}, {map} or a function")
}

function validateColumn(name: string, v: unknown): ResolvedSpec['columns'][string] {
  const field = `columns.${name}`
  if (!isObject(v)) fail(field, 'must be an object')
  checkKeys(
    v,
    ['from', 'type', 'required', 'default', 'transform', 'lookup', 'values', 'formats', 'tz'],
    field,
  )
  if (
    v.from !== undefined &&
    typeof v.from !== 'string' &&
    !(Number.isInteger(v.from) && (v.from as number) >= 0)
  )
    fail(`${field}.from`, 'must be a field name or a 0-based field index')
  const type = (v.type ?? 'text') as ColumnType
  if (!TYPES.includes(type)) fail(`${field}.type`, `must be one of ${TYPES.join(', ')}`)
  if (v.required !== undefined && typeof v.required !== 'boolean')
    fail(`${field}.required`, 'must be a boolean')
  if (
    v.default !== undefined &&
    v.default !== null &&
    !['string', 'number', 'boolean'].includes(typeof v.default)
  )
    fail(`${field}.default`, 'must be a string, number, boolean or null')
  const raw =
    v.transform === undefined ? [] : Array.isArray(v.transform) ? v.transform : [v.transform]
  const transforms = raw.map((t, i) =>
    validateTransform(t, `${field}.transform${Array.isArray(v.transform) ? `[${i}]` : ''}`),
  )
  if (type === 'enum') {
    if (
      !Array.isArray(v.values) ||
      v.values.length === 0 ||
      !v.values.every((x) => typeof x === 'string')
    )
      fail(`${field}.values`, 'must be a non-empty array of strings for type enum')
  } else if (v.values !== undefined) fail(`${field}.values`, 'is only allowed with type enum')
  if (v.formats !== undefined) {
    if (type !== 'date' && type !== 'timestamp')
      fail(`${field}.formats`, 'is only allowed with type date or timestamp')
    if (
      !Array.isArray(v.formats) ||
      !v.formats.every((f) => typeof f === 'string' && /YYYY/.test(f))
    )
      fail(
        `${field}.formats`,
        "must be an array of formats such as 'DD/MM/YYYY' (tokens YYYY MM DD HH mm ss SSS)",
      )
  }
  if (v.tz !== undefined) {
    if (type !== 'timestamp') fail(`${field}.tz`, 'is only allowed with type timestamp')
    if (typeof v.tz !== 'string' || !isTimeZone(v.tz))
      fail(`${field}.tz`, 'must be an IANA time zone such as Europe/Paris')
  }
  if (v.lookup !== undefined) {
    const l = v.lookup
    if (!isObject(l)) fail(`${field}.lookup`, 'must be {table, column, returns}')
    checkKeys(l, ['table', 'schema', 'column', 'returns'], `${field}.lookup`)
    str(l.table, `${field}.lookup.table`)
    str(l.column, `${field}.lookup.column`)
    str(l.returns, `${field}.lookup.returns`)
    str(l.schema, `${field}.lookup.schema`, { optional: true })
  }
  return { ...(v as ColumnSpec), type, transforms }
}

/**
 * Validates a spec (parsed JSON or a TS object) and applies defaults. Throws
 * STRATA_IMPORT_INVALID_SPEC with a message naming the offending field. Identifiers are checked
 * against the catalog later (`resolveTarget`), since that needs the database.
 */
export function validateSpec(input: unknown): ResolvedSpec {
  if (!isObject(input)) fail('spec', 'must be an object')
  checkStorable(input, '')
  checkKeys(input, ['source', 'target', 'columns', 'errors', 'batch', 'workers'], 'spec')
  const source = validateSource(input.source)

  const t = input.target
  if (!isObject(t)) fail('target', 'must be an object')
  checkKeys(t, ['table', 'schema', 'mode', 'key', 'archiveFile'], 'target')
  const table = str(t.table, 'target.table')!
  const schema = str(t.schema, 'target.schema', { optional: true }) ?? 'public'
  const mode = (t.mode ?? 'insert') as TargetMode
  if (!MODES.includes(mode)) fail('target.mode', `must be one of ${MODES.join(', ')}`)
  let key: string[] = []
  // An empty key (as stored for keyless jobs) means no key.
  if (t.key !== undefined && !(Array.isArray(t.key) && t.key.length === 0)) {
    if (
      !Array.isArray(t.key) ||
      t.key.length === 0 ||
      !t.key.every((k) => typeof k === 'string' && k.length > 0)
    )
      fail('target.key', 'must be a non-empty array of column names')
    key = t.key as string[]
  }
  if (key.length === 0 && mode !== 'insert' && mode !== 'purge')
    fail('target.key', `is required with mode ${mode}`)
  const archiveFile = str(t.archiveFile, 'target.archiveFile', { optional: true })
  if (mode === 'archive' && !archiveFile)
    fail('target.archiveFile', 'is required with mode archive')

  if (!isObject(input.columns) || Object.keys(input.columns).length === 0)
    fail('columns', 'must map at least one target column')
  const columns: ResolvedSpec['columns'] = {}
  for (const [name, c] of Object.entries(input.columns)) columns[name] = validateColumn(name, c)
  for (const k of key)
    if (!(k in columns)) fail('target.key', `column "${k}" must also appear in columns`)

  const e = input.errors
  let errors: ResolvedSpec['errors'] = { maxErrorRate: importDefaults.errors.maxErrorRate }
  if (e !== undefined) {
    if (!isObject(e)) fail('errors', 'must be an object')
    checkKeys(e, ['maxErrorRate', 'rejectFile'], 'errors')
    const rate = e.maxErrorRate ?? importDefaults.errors.maxErrorRate
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1))
      fail('errors.maxErrorRate', 'must be a number between 0 and 1')
    errors = { maxErrorRate: rate }
    const rf = str(e.rejectFile, 'errors.rejectFile', { optional: true })
    if (rf !== undefined) errors.rejectFile = rf
  }

  const b = input.batch
  if (b !== undefined && !isObject(b)) fail('batch', 'must be an object')
  const bo = (b ?? {}) as Record<string, unknown>
  if (b !== undefined) checkKeys(bo, ['initial', 'min', 'max', 'targetMs', 'maxBytes'], 'batch')
  const d = importDefaults.batch
  const min = posInt(bo.min, 'batch.min', Math.min(d.min, (bo.max as number | undefined) ?? d.min))
  const max = posInt(bo.max, 'batch.max', Math.max(d.max, min))
  if (min > max) fail('batch.min', 'must not exceed batch.max')
  const initial = posInt(bo.initial, 'batch.initial', Math.min(Math.max(d.initial, min), max))
  if (initial < min || initial > max)
    fail('batch.initial', 'must lie between batch.min and batch.max')
  const targetMs = posInt(bo.targetMs, 'batch.targetMs', d.targetMs)
  const maxBytes = posInt(bo.maxBytes, 'batch.maxBytes', d.maxBytes)
  const workers = posInt(input.workers, 'workers', importDefaults.workers)

  const resolved: ResolvedSpec = {
    source,
    target: { table, schema, mode, key },
    columns,
    errors,
    batch: { initial, min, max, targetMs, maxBytes },
    workers,
  }
  if (archiveFile) resolved.target.archiveFile = archiveFile
  return resolved
}

/** The spec as stored in data_import_jobs (functions cannot be stored; they are kept in memory). */
export function serializableSpec(spec: unknown): unknown {
  return JSON.parse(
    JSON.stringify(spec, (_k, v: unknown) => (typeof v === 'function' ? '[function]' : v)),
  )
}
