-- A bank transfer to a pupil's QR whose school side (the pupil's receivable, the charges it
-- pays, the payment and its allocations, the fund legs) is settled after the webhook is
-- answered, by the settlement worker or by a transfer to the same school recorded alone
-- (services/schools/pending.rs). The bank's posting to the school's pending account is in the
-- ledger already; the row goes in the same database transaction as that posting and out in
-- the one that settles it.
CREATE TABLE school_pending_transfers (
    bank_transaction_id BLOB PRIMARY KEY NOT NULL REFERENCES bank_transactions (id),
    -- The school's pending account (school:<code>:pending), which holds the money.
    account_id BLOB NOT NULL REFERENCES accounts (id),
    intent_id BLOB NOT NULL REFERENCES payment_intents (id),
    school_id BLOB NOT NULL REFERENCES payees (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    arrived_at INTEGER NOT NULL
);
CREATE INDEX school_pending_transfers_school ON school_pending_transfers (school_id, arrived_at);
