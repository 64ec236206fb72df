import type { Queryable } from '@strata/pg'
import { importErrors } from './errors.js'
import type { ResolvedSpec } from './spec.js'

/** Quotes an identifier for SQL (only ever applied to names already found in the catalog). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`
}

export interface CatalogColumn {
  name: string
  /** format_type(): e.g. 'integer', 'timestamp with time zone', 'character varying(80)'. */
  sqlType: string
  notNull: boolean
  hasDefault: boolean
}

export interface ResolvedTarget {
  schema: string
  table: string
  /** Quoted "schema"."table". */
  sql: string
  columns: Map<string, CatalogColumn>
  /** True when a unique index or primary key covers exactly the key columns. */
  keyIsUnique: boolean
}

export interface ResolvedLookup {
  sql: string
  column: CatalogColumn
  returns: CatalogColumn
}

async function tableColumns(
  db: Queryable,
  schema: string,
  table: string,
): Promise<Map<string, CatalogColumn> | undefined> {
  const res = await db.query<{
    name: string
    sql_type: string
    not_null: boolean
    has_default: boolean
    relkind: string
  }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type,
            a.attnotnull AS not_null, a.atthasdef AS has_default, c.relkind::text AS relkind
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
      ORDER BY a.attnum`,
    [schema, table],
    { label: 'importer.catalog' },
  )
  if (res.rows.length === 0) return undefined
  return new Map(
    res.rows
      .filter((r) => r.name !== null)
      .map((r) => [
        r.name,
        { name: r.name, sqlType: r.sql_type, notNull: r.not_null, hasDefault: r.has_default },
      ]),
  )
}

/**
 * Checks every identifier of the spec against the catalog (pg_class/pg_attribute/pg_index).
 * Only names found there are later quoted into SQL, so a spec can never inject SQL.
 */
export async function resolveTarget(
  db: Queryable,
  spec: ResolvedSpec,
): Promise<{
  target: ResolvedTarget
  lookups: Map<string, ResolvedLookup>
}> {
  const { schema, table, key, mode } = spec.target
  const columns = await tableColumns(db, schema, table)
  if (!columns)
    throw importErrors.create('STRATA_IMPORT_UNKNOWN_TABLE', {
      message: `import spec: target.table "${schema}.${table}" does not exist`,
      details: { field: 'target.table', table: `${schema}.${table}` },
    })
  for (const name of Object.keys(spec.columns))
    if (!columns.has(name))
      throw importErrors.create('STRATA_IMPORT_UNKNOWN_COLUMN', {
        message: `import spec: columns.${name}: table ${schema}.${table} has no column "${name}"`,
        details: { field: `columns.${name}` },
      })
  let keyIsUnique = false
  if (key.length > 0) {
    const res = await db.query<{ ok: boolean }>(
      `SELECT EXISTS (
         SELECT 1 FROM pg_index i
          WHERE i.indrelid = to_regclass($1)
            AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
            AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                   FROM pg_attribute a
                  WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
                = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k)) AS ok`,
      [qualified(schema, table), key],
      { label: 'importer.catalog' },
    )
    keyIsUnique = res.rows[0]?.ok === true
    if (!keyIsUnique && (mode === 'upsert' || mode === 'skip-existing'))
      throw importErrors.create('STRATA_IMPORT_NO_UNIQUE_KEY', {
        message: `import spec: target.key (${key.join(', ')}) needs a unique index or primary key on exactly these columns for mode ${mode}`,
        details: { field: 'target.key' },
      })
  }
  const lookups = new Map<string, ResolvedLookup>()
  for (const [name, col] of Object.entries(spec.columns)) {
    if (!col.lookup) continue
    const l = col.lookup
    const ls = l.schema ?? 'public'
    const lcols = await tableColumns(db, ls, l.table)
    const field = `columns.${name}.lookup`
    if (!lcols)
      throw importErrors.create('STRATA_IMPORT_UNKNOWN_TABLE', {
        message: `import spec: ${field}.table "${ls}.${l.table}" does not exist`,
        details: { field: `${field}.table` },
      })
    const c = lcols.get(l.column)
    const r = lcols.get(l.returns)
    if (!c || !r)
      throw importErrors.create('STRATA_IMPORT_UNKNOWN_COLUMN', {
        message: `import spec: ${field}.${c ? 'returns' : 'column'}: table ${ls}.${l.table} has no column "${c ? l.returns : l.column}"`,
        details: { field: `${field}.${c ? 'returns' : 'column'}` },
      })
    lookups.set(name, { sql: qualified(ls, l.table), column: c, returns: r })
  }
  return {
    target: { schema, table, sql: qualified(schema, table), columns, keyIsUnique },
    lookups,
  }
}
