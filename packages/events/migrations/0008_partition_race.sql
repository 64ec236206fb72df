-- Two instances creating the same month's partition at once: the second waited on the advisory
-- lock, but its to_regclass re-check can still read the catalog as it was before the first
-- committed (the advisory lock does not refresh the catalog snapshot), so CREATE TABLE failed
-- with duplicate_table and the flush with it. Seen with two writers on a fresh database.
-- The re-check stays (the common case), and a duplicate now means "someone else made it".
CREATE OR REPLACE FUNCTION strata_events_ensure_partition(parent text, at timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
  part text := format('%s_p%s', parent, to_char(month_start, 'YYYYMM'));
BEGIN
  IF parent NOT IN ('login_events', 'activity_logs', 'events') THEN
    RAISE EXCEPTION 'not a partitioned event table: %', parent;
  END IF;
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('strata_events_partition'), hashtext(part));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  BEGIN
    EXECUTE format(
      'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
      part, parent,
      month_start AT TIME ZONE 'UTC',
      (month_start + interval '1 month') AT TIME ZONE 'UTC'
    );
  EXCEPTION WHEN duplicate_table THEN
    RETURN false;
  END;
  RETURN true;
END
$$;
