-- Two more shapes of the same counts, kept by the writer in the ingest transaction, so a 90-day
-- summary reads thousands of rows instead of every hourly rollup of the range:
-- * daily rollups (UTC day) answer the breakdowns (method, device, browser, OS; action, entity)
--   for the whole UTC days of a range; hourly rollups and raw rows cover the rest;
-- * hourly counts (no dimensions) answer the per-interval series in any time zone: 2 rows per
--   hour for logins (success, failure), 1 for activities.
CREATE TABLE login_rollups_daily (
  project_id   uuid NOT NULL,
  bucket       timestamptz NOT NULL,
  method       text NOT NULL,
  device_type  text NOT NULL,
  browser      text NOT NULL,
  os           text NOT NULL,
  success      boolean NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, method, device_type, browser, os, success)
);

CREATE TABLE activity_rollups_daily (
  project_id   uuid NOT NULL,
  bucket       timestamptz NOT NULL,
  action       text NOT NULL,
  entity_type  text NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, action, entity_type)
);

CREATE TABLE login_counts_hourly (
  project_id  uuid NOT NULL,
  bucket      timestamptz NOT NULL,
  success     boolean NOT NULL,
  count       bigint NOT NULL,
  PRIMARY KEY (project_id, bucket, success)
);

CREATE TABLE activity_counts_hourly (
  project_id  uuid NOT NULL,
  bucket      timestamptz NOT NULL,
  count       bigint NOT NULL,
  PRIMARY KEY (project_id, bucket)
);

-- Adds the hourly rollups of [lo, hi) to the derived tables. Used by this migration and by bulk
-- loads that write hourly rollups themselves (`strata seed`); `lo`/`hi` must be whole UTC days,
-- or the caller must pass only rollups it has just added (it adds, it does not recompute).
CREATE FUNCTION strata_events_derive_rollups(project uuid, lo timestamptz, hi timestamptz, source text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  lsrc text := coalesce(source || '_l', 'login_rollups_hourly');
  asrc text := coalesce(source || '_a', 'activity_rollups_hourly');
BEGIN
  EXECUTE format($q$
    INSERT INTO login_rollups_daily AS r
    SELECT project_id, date_trunc('day', bucket, 'UTC'), method, device_type, browser, os, success, sum(count)
    FROM %I WHERE project_id = $1 AND bucket >= $2 AND bucket < $3
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (project_id, bucket, method, device_type, browser, os, success)
    DO UPDATE SET count = r.count + excluded.count$q$, lsrc) USING project, lo, hi;
  EXECUTE format($q$
    INSERT INTO login_counts_hourly AS r
    SELECT project_id, bucket, success, sum(count)
    FROM %I WHERE project_id = $1 AND bucket >= $2 AND bucket < $3
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (project_id, bucket, success) DO UPDATE SET count = r.count + excluded.count$q$, lsrc)
    USING project, lo, hi;
  EXECUTE format($q$
    INSERT INTO activity_rollups_daily AS r
    SELECT project_id, date_trunc('day', bucket, 'UTC'), action, entity_type, sum(count)
    FROM %I WHERE project_id = $1 AND bucket >= $2 AND bucket < $3
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, bucket, action, entity_type) DO UPDATE SET count = r.count + excluded.count$q$, asrc)
    USING project, lo, hi;
  EXECUTE format($q$
    INSERT INTO activity_counts_hourly AS r
    SELECT project_id, bucket, sum(count)
    FROM %I WHERE project_id = $1 AND bucket >= $2 AND bucket < $3
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, bucket) DO UPDATE SET count = r.count + excluded.count$q$, asrc)
    USING project, lo, hi;
END
$$;

-- Recomputes the derived tables of `project` for the UTC days meeting [lo, hi) from the hourly
-- rollups: for repairs, e.g. after a rolling upgrade during which older instances wrote hourly
-- rollups only. Run it when no writer is adding to those days (a flush racing the recompute may
-- be counted twice).
CREATE FUNCTION strata_events_rebuild_derived_rollups(project uuid, lo timestamptz, hi timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  d0 timestamptz := date_trunc('day', lo, 'UTC');
  d1 timestamptz := date_trunc('day', hi - interval '1 microsecond', 'UTC') + interval '1 day';
BEGIN
  DELETE FROM login_rollups_daily WHERE project_id = project AND bucket >= d0 AND bucket < d1;
  DELETE FROM activity_rollups_daily WHERE project_id = project AND bucket >= d0 AND bucket < d1;
  DELETE FROM login_counts_hourly WHERE project_id = project AND bucket >= d0 AND bucket < d1;
  DELETE FROM activity_counts_hourly WHERE project_id = project AND bucket >= d0 AND bucket < d1;
  PERFORM strata_events_derive_rollups(project, d0, d1);
END
$$;

DO $$
DECLARE
  p record;
BEGIN
  FOR p IN
    SELECT project_id FROM login_rollups_hourly UNION SELECT project_id FROM activity_rollups_hourly
  LOOP
    PERFORM strata_events_derive_rollups(p.project_id, '-infinity', 'infinity');
  END LOOP;
END
$$;
