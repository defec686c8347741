-- The web app's logins: server-side sessions, and the index the payee's own payment list
-- reads by. Same tables and names as migrations/postgres/0007_web_sessions.sql. Times are
-- microseconds since the Unix epoch (UTC).

-- One browser login. The cookie carries a random token; only its SHA-256 is kept, so a copy
-- of the database cannot open anyone's session. Expiry slides forward while the session is
-- used; logging out (or an admin) revokes it. A session is live only while its user is enabled
-- and still has the credentials version it logged in with: a password change or reset ends it.
CREATE TABLE web_sessions (
    id BLOB PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BLOB NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    credentials_version INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- A payee's payments received, newest first and after a bank transaction (live catch-up).
CREATE INDEX bank_transactions_payee ON bank_transactions (payee_id, id);
