-- Sessions are inserted in roughly expires_at order (created_at + a fixed TTL), so a BRIN index
-- serves the cleanup scan for a few pages, and costs the hot login path nothing on insert,
-- unlike the B-tree it replaces (measured: the sessions insert was the writer's largest step).
DROP INDEX user_sessions_expiry_idx;
CREATE INDEX user_sessions_expiry_brin ON user_sessions USING brin (expires_at);
