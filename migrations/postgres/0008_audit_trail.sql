-- User administration (disable, forced password change, last login, revoking tokens on a
-- password reset) and the append-only audit trail. Same names as
-- migrations/sqlite/0008_audit_trail.sql.

ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;

-- before_state and after_state are JSON text, read and written the same way on both backends.
CREATE TABLE audit_log (
    id UUID PRIMARY KEY,
    recorded_at BIGINT NOT NULL,
    actor_id UUID NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    request_id TEXT
);
CREATE INDEX audit_log_recorded ON audit_log (recorded_at, id);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id, recorded_at);

-- The same refusal the ledger's entries and transactions get (0001_ledger.sql).
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_are_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_are_immutable();
