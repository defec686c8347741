-- User administration (disable, forced password change, last login, revoking tokens on a
-- password reset) and the append-only audit trail. Same names as
-- migrations/postgres/0008_audit_trail.sql.

ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_at INTEGER;

-- before_state and after_state are JSON text.
CREATE TABLE audit_log (
    id BLOB PRIMARY KEY NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor_id BLOB NOT NULL,
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

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows are immutable'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows are immutable'); END;
