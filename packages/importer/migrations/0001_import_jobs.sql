-- Import jobs and their logs. The checkpoint columns advance in the same transaction as the rows
-- they cover, which is what makes a resumed job load each source record exactly once.
CREATE TABLE IF NOT EXISTS data_import_jobs (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  parent_id          uuid REFERENCES data_import_jobs (id) ON DELETE CASCADE,
  chunk_index        integer,
  status             text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'paused', 'failed', 'cancelled', 'completed')),
  requested          text CHECK (requested IN ('pause', 'cancel')),
  reason             text,
  spec               jsonb NOT NULL,
  base_dir           text,
  source_fingerprint text,
  -- For a chunk: {"start","end","firstLine","header"} of the byte range it owns.
  chunk              jsonb,
  -- Source records consumed (loaded, rejected or skipped) and the line after the last one.
  checkpoint_records bigint NOT NULL DEFAULT 0,
  checkpoint_line    bigint NOT NULL DEFAULT 0,
  rows_read          bigint NOT NULL DEFAULT 0,
  rows_loaded        bigint NOT NULL DEFAULT 0,
  rows_rejected      bigint NOT NULL DEFAULT 0,
  rows_skipped       bigint NOT NULL DEFAULT 0,
  batches            bigint NOT NULL DEFAULT 0,
  batch_size         integer,
  total_bytes        bigint,
  bytes_read         bigint,
  throughput_rps     double precision,
  error_rate         double precision NOT NULL DEFAULT 0,
  -- Fencing token: only the runner holding the current token may advance the checkpoint.
  run_token          uuid,
  runs               integer NOT NULL DEFAULT 0,
  elapsed_ms         bigint NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz
);

CREATE INDEX IF NOT EXISTS data_import_jobs_parent_idx ON data_import_jobs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS data_import_jobs_status_idx ON data_import_jobs (status, created_at DESC);

CREATE TABLE IF NOT EXISTS data_migration_logs (
  id          bigserial PRIMARY KEY,
  job_id      uuid NOT NULL REFERENCES data_import_jobs (id) ON DELETE CASCADE,
  level       text NOT NULL DEFAULT 'reject' CHECK (level IN ('reject', 'info', 'warn', 'error')),
  line        bigint,
  column_name text,
  code        text,
  message     text NOT NULL,
  -- The original fields of a rejected record (CSV fields, or the NDJSON line).
  fields      jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS data_migration_logs_job_idx ON data_migration_logs (job_id, line);
