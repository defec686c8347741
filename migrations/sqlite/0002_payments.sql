-- Payees, the bank accounts they collect into, and payment intents. Same tables and names as
-- migrations/postgres/0002_payments.sql. Times are microseconds since the Unix epoch (UTC);
-- amounts are đồng.

-- A monitored bank account. Several payees may share one (a pooled market account); its
-- ledger asset account is bank:<bin>:<account_number>.
CREATE TABLE collection_accounts (
    id BLOB PRIMARY KEY NOT NULL,
    bank_bin TEXT NOT NULL,
    account_number TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    ledger_account_id BLOB NOT NULL UNIQUE REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    UNIQUE (bank_bin, account_number)
);

CREATE TABLE payees (
    id BLOB PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('vendor', 'school', 'cooperative')),
    name TEXT NOT NULL,
    hamlet TEXT,
    stall TEXT,
    phone TEXT,
    category TEXT,
    active BOOLEAN NOT NULL,
    -- The payee's liability account, payee:<code>.
    ledger_account_id BLOB NOT NULL UNIQUE REFERENCES accounts (id),
    collection_account_id BLOB NOT NULL REFERENCES collection_accounts (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX payees_collection_account ON payees (collection_account_id);

CREATE TABLE payment_intents (
    id BLOB PRIMARY KEY NOT NULL,
    payee_id BLOB NOT NULL REFERENCES payees (id),
    -- Where the QR sends the money, fixed when the intent is made.
    collection_account_id BLOB NOT NULL REFERENCES collection_accounts (id),
    reference TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL CHECK (amount > 0),
    description TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'paid', 'partially_paid', 'expired', 'cancelled')),
    qr_payload TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by BLOB NOT NULL,
    cancelled_at INTEGER
);
CREATE INDEX payment_intents_payee ON payment_intents (payee_id, created_at, id);
-- The expiry sweep reads only pending intents.
CREATE INDEX payment_intents_pending_expiry ON payment_intents (expires_at)
    WHERE status = 'pending';
