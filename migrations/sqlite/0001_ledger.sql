-- Core ledger schema. Times are microseconds since the Unix epoch (UTC); money is integer
-- minor units. Same tables and names as migrations/postgres/0001_ledger.sql.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'auditor', 'vendor', 'school')),
    payee_id BLOB,
    created_at INTEGER NOT NULL,
    CHECK ((role IN ('vendor', 'school')) = (payee_id IS NOT NULL))
);

CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
);

CREATE TABLE accounts (
    id BLOB PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    currency TEXT NOT NULL,
    debits_must_not_exceed_credits BOOLEAN NOT NULL,
    credits_must_not_exceed_debits BOOLEAN NOT NULL,
    debits_posted INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    entry_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE transactions (
    id BLOB PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    reference TEXT,
    metadata TEXT,
    effective_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    reversal_of BLOB UNIQUE REFERENCES transactions (id),
    created_by BLOB NOT NULL
);
CREATE INDEX transactions_created ON transactions (created_at, id);
CREATE INDEX transactions_reference ON transactions (reference);

CREATE TABLE entries (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    account_seq INTEGER NOT NULL,
    transaction_id BLOB NOT NULL REFERENCES transactions (id),
    posting_index INTEGER NOT NULL,
    is_debit BOOLEAN NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    debits_after INTEGER NOT NULL,
    credits_after INTEGER NOT NULL,
    effective_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, account_seq)
);
CREATE INDEX entries_transaction ON entries (transaction_id);
CREATE INDEX entries_account_effective ON entries (account_id, effective_at);

CREATE TABLE idempotency_keys (
    user_id BLOB NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response_body TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Entries and transactions are immutable: corrections are reversing transactions.
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
BEGIN SELECT RAISE(ABORT, 'ledger transactions are immutable'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
BEGIN SELECT RAISE(ABORT, 'ledger transactions are immutable'); END;
