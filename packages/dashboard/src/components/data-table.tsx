import type { ReactNode } from 'react'
import { TableWrap } from './table-wrap.js'

/** A column heading: its text, or the text and `num` for a right-aligned column of figures. */
export type Column = string | { label: string; num: true }

interface DataTableProps<T> {
  /** Accessible name of the scroller around the table. */
  label: string
  card?: boolean
  caption: ReactNode
  columns: readonly Column[]
  rows: readonly T[]
  /** Shown in a single row when `rows` is empty. @defaultValue 'No data' */
  empty?: ReactNode
  /** One `<tr>` (with its key) per row. */
  children: (row: T, index: number) => ReactNode
}

/** A captioned table in its scroller, one heading per column, "No data" when there are no rows. */
export function DataTable<T>({
  label,
  card = false,
  caption,
  columns,
  rows,
  empty = 'No data',
  children,
}: DataTableProps<T>) {
  return (
    <TableWrap label={label} card={card}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) =>
              typeof c === 'string' ? (
                <th key={c} scope="col">
                  {c}
                </th>
              ) : (
                <th key={c.label} scope="col" className="num">
                  {c.label}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="empty">
                {empty}
              </td>
            </tr>
          ) : (
            rows.map((row, i) => children(row, i))
          )}
        </tbody>
      </table>
    </TableWrap>
  )
}
