-- Bank feeds: webhook configuration per collection account, every verified delivery as
-- received, the bank transactions they carry (each once), money waiting in suspense and how
-- staff resolved it, and running-balance discrepancies. Same tables and names as
-- migrations/postgres/0003_bank_feed.sql. Times are microseconds since the Unix epoch (UTC);
-- amounts are đồng.

-- What has arrived for an intent so far; a partial payment leaves it below amount.
ALTER TABLE payment_intents ADD COLUMN paid_amount INTEGER NOT NULL DEFAULT 0
    CHECK (paid_amount >= 0);

-- Money nobody could match waits here for staff. No balance guard: a refund of parked money
-- or an unexplained withdrawal may take it below zero, and that must still be recorded. If an
-- account already has this code, the migration fails rather than post to the wrong account.
INSERT INTO accounts (id, code, name, kind, currency, debits_must_not_exceed_credits,
    credits_must_not_exceed_debits, created_at)
VALUES (X'00000000000070008000000000000001', 'suspense:bank-feed',
    'Bank transfers waiting to be matched', 'liability', 'VND', 0, 0, 0);

CREATE TABLE bank_feeds (
    collection_account_id BLOB PRIMARY KEY NOT NULL REFERENCES collection_accounts (id),
    provider TEXT NOT NULL CHECK (provider IN ('sepay', 'payos', 'casso', 'standard')),
    -- JSON array of one or two secrets as pasted from the provider's dashboard. They are
    -- HMAC keys, so they must be readable; keep database backups as secret as the keys.
    secrets TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by BLOB NOT NULL
);

CREATE TABLE webhook_deliveries (
    id BLOB PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    collection_account_id BLOB REFERENCES collection_accounts (id),
    received_at INTEGER NOT NULL,
    -- JSON object of the request headers, credentials redacted.
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    -- Comma-separated provider transaction ids the body carries.
    provider_transaction_ids TEXT NOT NULL,
    -- 'accepted', or the error code the body was refused with.
    outcome TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

CREATE TABLE bank_transactions (
    id BLOB PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    provider_transaction_id TEXT NOT NULL,
    delivery_id BLOB NOT NULL REFERENCES webhook_deliveries (id),
    collection_account_id BLOB NOT NULL REFERENCES collection_accounts (id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    description TEXT NOT NULL,
    bank_reference TEXT,
    occurred_at INTEGER NOT NULL,
    running_balance INTEGER,
    -- intent, payee, suspense, refund (an outgoing transfer that paid back parked money)
    matched_as TEXT NOT NULL CHECK (matched_as IN ('intent', 'payee', 'suspense', 'refund')),
    payee_id BLOB REFERENCES payees (id),
    payment_intent_id BLOB REFERENCES payment_intents (id),
    -- The part of the amount parked in (or, outgoing, taken from) suspense.
    suspense_amount INTEGER NOT NULL CHECK (suspense_amount >= 0),
    -- Comma-separated: overpaid, late_payment, intent_cancelled, intent_already_paid, ...
    flags TEXT NOT NULL,
    ledger_transaction_id BLOB NOT NULL REFERENCES transactions (id)
        -- Written in the same database transaction, after this row claims the provider id.
        DEFERRABLE INITIALLY DEFERRED,
    created_at INTEGER NOT NULL,
    UNIQUE (provider, provider_transaction_id)
);
CREATE INDEX bank_transactions_account_time
    ON bank_transactions (collection_account_id, occurred_at);
CREATE INDEX bank_transactions_suspense ON bank_transactions (created_at, id)
    WHERE suspense_amount > 0;
CREATE INDEX bank_transactions_intent ON bank_transactions (payment_intent_id);
-- A feed record of an amount a statement line recorded the same day (possible duplicate).
CREATE INDEX bank_transactions_account_amount
    ON bank_transactions (collection_account_id, amount, occurred_at);
-- The same transfer recorded from a statement and from a feed shares its bank reference.
CREATE INDEX bank_transactions_reference
    ON bank_transactions (collection_account_id, direction, UPPER(TRIM(bank_reference)));

CREATE TABLE suspense_resolutions (
    id BLOB PRIMARY KEY NOT NULL,
    -- One resolution per parked transfer, ever.
    bank_transaction_id BLOB NOT NULL UNIQUE REFERENCES bank_transactions (id),
    action TEXT NOT NULL CHECK (action IN ('intent', 'payee', 'refund', 'duplicate')),
    payment_intent_id BLOB REFERENCES payment_intents (id),
    payee_id BLOB REFERENCES payees (id),
    note TEXT NOT NULL,
    resolved_by BLOB NOT NULL,
    resolved_by_username TEXT NOT NULL,
    resolved_at INTEGER NOT NULL,
    -- The posting out of suspense; for a refund, made when the outgoing transfer arrives.
    ledger_transaction_id BLOB REFERENCES transactions (id),
    refunded_by_bank_transaction_id BLOB REFERENCES bank_transactions (id),
    -- For a duplicate: the record of the same money that stands.
    duplicate_of BLOB REFERENCES bank_transactions (id)
);
CREATE INDEX suspense_resolutions_pending_refunds ON suspense_resolutions (resolved_at)
    WHERE action = 'refund' AND refunded_by_bank_transaction_id IS NULL;

CREATE TABLE bank_discrepancies (
    id BLOB PRIMARY KEY NOT NULL,
    collection_account_id BLOB NOT NULL REFERENCES collection_accounts (id),
    bank_transaction_id BLOB NOT NULL REFERENCES bank_transactions (id),
    bank_balance INTEGER NOT NULL,
    ledger_balance INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX bank_discrepancies_created ON bank_discrepancies (created_at, id);
