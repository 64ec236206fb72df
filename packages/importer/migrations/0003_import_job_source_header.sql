-- The source's header row (CSV field names), recorded when a run opens the source: the rejects
-- CSV served over HTTP names the original fields as the CLI's reject file does.
ALTER TABLE data_import_jobs ADD COLUMN IF NOT EXISTS source_header jsonb;
