-- Core ledger schema. Times are microseconds since the Unix epoch (UTC); money is integer
-- minor units. Same tables and names as migrations/sqlite/0001_ledger.sql. UUID keys and no
-- sequences, so the schema ports to Citus / CockroachDB / YugabyteDB.

CREATE TABLE users (
    id UUID PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'auditor', 'vendor', 'school')),
    payee_id UUID,
    created_at BIGINT NOT NULL,
    CHECK ((role IN ('vendor', 'school')) = (payee_id IS NOT NULL))
);

CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id UUID PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    currency TEXT NOT NULL,
    debits_must_not_exceed_credits BOOLEAN NOT NULL,
    credits_must_not_exceed_debits BOOLEAN NOT NULL,
    debits_posted BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    entry_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE transactions (
    id UUID PRIMARY KEY,
    description TEXT NOT NULL,
    reference TEXT,
    metadata TEXT,
    effective_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    reversal_of UUID UNIQUE REFERENCES transactions (id),
    created_by UUID NOT NULL
);
CREATE INDEX transactions_created ON transactions (created_at, id);
CREATE INDEX transactions_reference ON transactions (reference);

CREATE TABLE entries (
    account_id UUID NOT NULL REFERENCES accounts (id),
    account_seq BIGINT NOT NULL,
    transaction_id UUID NOT NULL REFERENCES transactions (id),
    posting_index INTEGER NOT NULL,
    is_debit BOOLEAN NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    debits_after BIGINT NOT NULL,
    credits_after BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, account_seq)
);
CREATE INDEX entries_transaction ON entries (transaction_id);
CREATE INDEX entries_account_effective ON entries (account_id, effective_at);

CREATE TABLE idempotency_keys (
    user_id UUID NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response_body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Entries and transactions are immutable: corrections are reversing transactions.
CREATE FUNCTION ledger_rows_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger % rows are immutable', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_are_immutable();
CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_are_immutable();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_are_immutable();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_are_immutable();
