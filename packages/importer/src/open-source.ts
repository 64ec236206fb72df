import type { Database } from '@strata/pg'
import type { ChunkInfo } from './job-store.js'
import { openCsvSource } from './sources/csv-source.js'
import { openNdjsonSource } from './sources/ndjson-source.js'
import { openPostgresSource } from './sources/postgres-source.js'
import type { Source } from './sources/source.js'
import type { ResolvedSpec } from './spec.js'

/** Opens the spec's source (a chunk's byte range when `chunk` is given). */
export async function openSource(
  spec: ResolvedSpec,
  path: string | null,
  chunk: ChunkInfo | null,
  pgSource?: { db: Database; skip: number },
): Promise<Source> {
  const s = spec.source
  if (s.format === 'postgres') {
    if (!pgSource) throw new Error('a postgres source needs the database')
    return openPostgresSource(s, pgSource.db, { skip: pgSource.skip })
  }
  const range = chunk ? { start: chunk.start, end: chunk.end } : undefined
  const common = { ...(range ? { range } : {}), ...(chunk ? { firstLine: chunk.firstLine } : {}) }
  if (s.format === 'csv')
    return openCsvSource(s, path!, {
      ...common,
      ...(chunk?.header ? { header: chunk.header } : {}),
    })
  return openNdjsonSource(s, path!, common)
}
