-- pg_stat_statements history for baselines (written by db.statements.sample()):
-- per-bucket deltas at minute resolution (kept 24 h) and hourly (kept 14 days), plus the last
-- cumulative snapshot so that any instance can compute the next delta without
-- pg_stat_statements_reset().
CREATE TABLE IF NOT EXISTS strata_statement_history (
  resolution text NOT NULL CHECK (resolution IN ('minute', 'hour')),
  bucket timestamptz NOT NULL,
  queryid bigint NOT NULL,
  query text NOT NULL,
  calls bigint NOT NULL,
  total_ms double precision NOT NULL,
  rows bigint NOT NULL,
  shared_blks_hit bigint NOT NULL,
  shared_blks_read bigint NOT NULL,
  PRIMARY KEY (resolution, bucket, queryid)
);

CREATE TABLE IF NOT EXISTS strata_statement_snapshot (
  queryid bigint PRIMARY KEY,
  calls bigint NOT NULL,
  total_ms double precision NOT NULL,
  rows bigint NOT NULL,
  shared_blks_hit bigint NOT NULL,
  shared_blks_read bigint NOT NULL,
  taken_at timestamptz NOT NULL
);
