-- The postgres source's connection URL with its password, kept apart from `spec`: the stored
-- spec shows the URL redacted (postgres://user:***@host/db), and only the runner reads this
-- column, to start or resume the job. No list or get function returns it; it is cleared when
-- the job completes or is cancelled.
ALTER TABLE data_import_jobs ADD COLUMN IF NOT EXISTS source_url text;
