import { createWriteStream, type WriteStream } from 'node:fs'
import { once } from 'node:events'

/** One rejected record, as stored in data_migration_logs and written to the reject file. */
export interface Reject {
  line: number
  column: string | null
  code: string
  message: string
  fields: string[]
}

// A spreadsheet would run cells starting with these as formulas (CSV injection).
const FORMULA_START = /^[=+\-@\t\r]/

/** One CSV cell: neutralised against formula injection, quoted when needed. */
export function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return ''
  let s = String(value)
  if (FORMULA_START.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export function rejectHeader(sourceHeader: string[] | undefined): string {
  return (
    ['line', 'column', 'code', 'message', ...(sourceHeader ?? [])].map(csvCell).join(',') + '\n'
  )
}

export function rejectLine(r: Reject): string {
  return [r.line, r.column, r.code, r.message, ...r.fields].map(csvCell).join(',') + '\n'
}

/** Appends rejects to the CSV reject file (rewritten from the database on each run start). */
export class RejectFileWriter {
  readonly #stream: WriteStream

  constructor(path: string, header: string, existing: Reject[]) {
    this.#stream = createWriteStream(path, { flags: 'w' })
    this.#stream.write(header)
    for (const r of existing) this.#stream.write(rejectLine(r))
  }

  async append(rejects: Reject[]): Promise<void> {
    if (rejects.length === 0) return
    const ok = this.#stream.write(rejects.map(rejectLine).join(''))
    if (!ok) await once(this.#stream, 'drain')
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.#stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    )
  }
}
