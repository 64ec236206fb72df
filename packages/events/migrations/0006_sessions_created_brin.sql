-- Session statistics (analytics) filter by created_at ranges. Sessions arrive in created_at
-- order, so a BRIN narrows those scans to the right blocks for almost no insert cost, unlike a
-- B-tree on the login path.
CREATE INDEX user_sessions_created_brin ON user_sessions USING brin (created_at);
