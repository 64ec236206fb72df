export { importErrors } from './errors.js'
export type { ImportErrorCode } from './errors.js'
export { importDefaults } from './options.js'
export { validateSpec } from './spec.js'
export type {
  BatchSpec,
  ColumnSpec,
  ColumnType,
  CsvSourceSpec,
  ErrorsSpec,
  ImportSpec,
  LookupSpec,
  NdjsonSourceSpec,
  PostgresSourceSpec,
  ResolvedSpec,
  SourceSpec,
  TargetMode,
  TargetSpec,
  TransformFn,
  TransformSpec,
} from './spec.js'
export { importerMigrations } from './migrations.js'
export { createImportJob, resumeImport, runImport, runImportJob } from './import-runner.js'
export type { ImportOptions, ImportProgress, ImportResult } from './import-runner.js'
export {
  failureCode,
  getImportJob,
  listChildJobs,
  listJobs,
  listRejects,
  requestJobAction,
} from './job-store.js'
export type {
  ChunkInfo,
  ImportJob,
  JobListCursor,
  JobStatus,
  ListJobsOptions,
} from './job-store.js'
export { resolveImportPath } from './resolve-import-path.js'
export { csvCell, rejectHeader, rejectLine } from './reject-file.js'
export type { Reject } from './reject-file.js'
export { planChunks } from './plan-chunks.js'
// The BullMQ chunk queue is `@strata/importer/queue` (src/import-queue.ts): importing the
// package for file imports does not load bullmq.
