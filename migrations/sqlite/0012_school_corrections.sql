-- Corrections of posted school runs and refunds of a pupil's credit. Same tables and names as
-- migrations/postgres/0014_school_corrections.sql. A posted run is never edited: a reversal or
-- an adjustment is its own ledger transaction and its own row here.

-- A reversed run: every pupil's charges in it are reversed.
ALTER TABLE collection_runs ADD COLUMN reversed_at INTEGER;
-- A reversed charge owes nothing; what had been paid on it went back to the pupil's credit.
-- Its amount is what it owes now: the posted gross - exemption plus its adjustments.
ALTER TABLE school_charges ADD COLUMN reversed_at INTEGER;

-- Each correction: a run reversed (no ledger transaction of its own: one per pupil follows),
-- one pupil's charges in a run reversed, one charge adjusted by a signed amount, or a pupil's
-- credit refunded (in cash from the desk, or by bank transfer).
CREATE TABLE school_corrections (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    kind TEXT NOT NULL
        CHECK (kind IN ('run_reversal', 'pupil_reversal', 'adjustment', 'refund')),
    run_id BLOB REFERENCES collection_runs (id),
    pupil_id BLOB REFERENCES pupils (id),
    charge_id BLOB REFERENCES school_charges (id),
    -- đồng: the charges a reversal took back, an adjustment's signed change, a refund paid.
    amount INTEGER NOT NULL,
    -- A refund's way out: 'cash' (the desk) or 'bank_transfer' (with the bank's reference).
    method TEXT CHECK (method IN ('cash', 'bank_transfer')),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    ledger_transaction_id BLOB REFERENCES transactions (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX school_corrections_run ON school_corrections (run_id, pupil_id);
CREATE INDEX school_corrections_pupil ON school_corrections (pupil_id, created_at);

-- A pupil's QR for a run that a correction (or a household payment) replaced: the run's row
-- in school_run_intents names the new one; money still sent to an old one is the pupil's.
CREATE TABLE school_superseded_intents (
    intent_id BLOB PRIMARY KEY NOT NULL REFERENCES payment_intents (id),
    run_id BLOB NOT NULL REFERENCES collection_runs (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    superseded_at INTEGER NOT NULL
);

-- A parent's read-only link to the open charges of one household's pupils at the school that
-- made it: only the SHA-256 of the token is kept.
CREATE TABLE school_household_links (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    household_id BLOB NOT NULL REFERENCES households (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
