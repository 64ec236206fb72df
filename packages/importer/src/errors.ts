import { defineErrors } from '@strata/core'

/** Every error the importer raises on purpose, for specs, sources, jobs and rejected rows. */
export const importErrors = defineErrors('import', {
  // Spec and configuration
  STRATA_IMPORT_INVALID_SPEC: { status: 400, message: 'The import spec is invalid' },
  STRATA_IMPORT_UNKNOWN_TABLE: { status: 400, message: 'The target table does not exist' },
  STRATA_IMPORT_UNKNOWN_COLUMN: { status: 400, message: 'A column does not exist in the table' },
  STRATA_IMPORT_NO_UNIQUE_KEY: {
    status: 400,
    message: 'The target key is not covered by a unique index',
  },
  STRATA_IMPORT_PATH_NOT_ALLOWED: {
    status: 403,
    message: 'The source path is outside the import directory',
  },
  STRATA_IMPORT_SOURCE_NOT_FOUND: { status: 404, message: 'The source file does not exist' },
  STRATA_IMPORT_UPLOAD_TOO_LARGE: { status: 413, message: 'The uploaded file is too large' },
  // Jobs
  STRATA_IMPORT_JOB_NOT_FOUND: { status: 404, message: 'No import job with this id' },
  STRATA_IMPORT_JOB_NOT_RESUMABLE: { status: 409, message: 'The job cannot be resumed' },
  STRATA_IMPORT_JOB_TAKEN_OVER: {
    status: 409,
    message: 'Another runner took over this job; this runner stopped',
  },
  STRATA_IMPORT_SOURCE_CHANGED: {
    status: 409,
    message: 'The source changed since the job started (fingerprint mismatch)',
  },
  STRATA_IMPORT_ERROR_THRESHOLD: {
    status: 422,
    message: 'The error rate exceeded maxErrorRate; the job is paused',
  },
  STRATA_IMPORT_DB_FAILED: { status: 503, message: 'The database kept failing; the job stopped' },
  // Row-level reasons (reject file and data_migration_logs)
  STRATA_IMPORT_PARSE_ERROR: { status: 422, message: 'The record could not be parsed' },
  STRATA_IMPORT_COLUMN_COUNT: {
    status: 422,
    message: 'The record has the wrong number of fields',
  },
  STRATA_IMPORT_REQUIRED: { status: 422, message: 'A required value is missing' },
  STRATA_IMPORT_INVALID_VALUE: { status: 422, message: 'A value does not match its type' },
  STRATA_IMPORT_TRANSFORM_FAILED: { status: 422, message: 'A transform failed' },
  STRATA_IMPORT_LOOKUP_MISSING: { status: 422, message: 'No parent row matches the lookup' },
  STRATA_IMPORT_DUPLICATE_KEY: { status: 422, message: 'A row with this key already exists' },
  STRATA_IMPORT_DB_REJECTED: { status: 422, message: 'The database rejected the row' },
  STRATA_IMPORT_LINE_TOO_LONG: { status: 422, message: 'The line exceeds the maximum length' },
})

export type ImportErrorCode = keyof typeof importErrors.definitions
