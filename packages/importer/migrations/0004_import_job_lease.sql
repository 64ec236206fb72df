-- A running job's lease: its runner pushes it forward every few seconds. A job still 'running'
-- whose lease has passed was left by a process that died, and another instance may take it over
-- (a conditional claim, so exactly one does; the run token fences the old runner's writes).
ALTER TABLE data_import_jobs ADD COLUMN IF NOT EXISTS lease_until timestamptz;
CREATE INDEX IF NOT EXISTS data_import_jobs_lease_idx ON data_import_jobs (lease_until)
  WHERE status = 'running';
