-- School fee collection (khoản thu). Same tables and names as migrations/postgres/0006_schools.sql.
-- A school is a payee of kind school. Times are microseconds since the Unix epoch (UTC), days
-- are Vietnam calendar days, amounts are đồng. What each pupil owes is the balance of the
-- pupil's receivable account in the ledger; these tables say which charge it came from.

CREATE TABLE school_years (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    name TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (school_id, name),
    CHECK (ends_on > starts_on)
);

CREATE TABLE school_classes (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    year_id BLOB NOT NULL REFERENCES school_years (id),
    grade INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 12),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (year_id, name)
);

CREATE TABLE pupils (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    code TEXT NOT NULL,
    full_name TEXT NOT NULL,
    household_id BLOB REFERENCES households (id),
    guardian_name TEXT,
    guardian_phone TEXT,
    -- school:<school code>:pupil:<pupil code>, an asset: what the pupil owes (negative: credit).
    receivable_account_id BLOB NOT NULL UNIQUE REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    UNIQUE (school_id, code)
);
CREATE INDEX pupils_household ON pupils (household_id);

-- Which class a pupil was in, from which day until which (exclusive); never rewritten, only
-- closed: a move closes one row and opens another, leaving school closes the last.
CREATE TABLE class_memberships (
    id BLOB PRIMARY KEY NOT NULL,
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    class_id BLOB NOT NULL REFERENCES school_classes (id),
    from_on TEXT NOT NULL,
    until_on TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX class_memberships_class ON class_memberships (class_id, pupil_id);
CREATE INDEX class_memberships_pupil ON class_memberships (pupil_id, from_on);

CREATE TABLE fee_items (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    year_id BLOB NOT NULL REFERENCES school_years (id),
    name TEXT NOT NULL,
    fund TEXT NOT NULL CHECK (fund IN ('school', 'parents_association', 'pass_through')),
    mandatory BOOLEAN NOT NULL,
    unit TEXT NOT NULL CHECK (unit IN ('month', 'term', 'year', 'school_day')),
    created_at INTEGER NOT NULL,
    UNIQUE (year_id, name)
);

-- The amount of an item per grade, or for one class (which wins over its grade's).
CREATE TABLE fee_amounts (
    fee_item_id BLOB NOT NULL REFERENCES fee_items (id),
    grade INTEGER,
    class_id BLOB REFERENCES school_classes (id),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    CHECK ((grade IS NULL) <> (class_id IS NULL))
);
CREATE UNIQUE INDEX fee_amounts_grade ON fee_amounts (fee_item_id, grade) WHERE grade IS NOT NULL;
CREATE UNIQUE INDEX fee_amounts_class ON fee_amounts (fee_item_id, class_id)
    WHERE class_id IS NOT NULL;

-- Pupils taking an optional item.
CREATE TABLE fee_enrolments (
    fee_item_id BLOB NOT NULL REFERENCES fee_items (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (fee_item_id, pupil_id)
);

-- Miễn giảm: a percentage or a fixed amount off one item for one pupil.
CREATE TABLE fee_exemptions (
    id BLOB PRIMARY KEY NOT NULL,
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    fee_item_id BLOB NOT NULL REFERENCES fee_items (id),
    percent INTEGER CHECK (percent BETWEEN 1 AND 100),
    amount INTEGER CHECK (amount > 0),
    category TEXT NOT NULL,
    note TEXT,
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    UNIQUE (pupil_id, fee_item_id),
    CHECK ((percent IS NULL) <> (amount IS NULL))
);

-- Đợt thu. Posted once; a posted run is never edited.
CREATE TABLE collection_runs (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    year_id BLOB NOT NULL REFERENCES school_years (id),
    name TEXT NOT NULL,
    due_on TEXT NOT NULL,
    school_days INTEGER CHECK (school_days > 0),
    posted_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (school_id, name)
);

CREATE TABLE collection_run_items (
    run_id BLOB NOT NULL REFERENCES collection_runs (id),
    fee_item_id BLOB NOT NULL REFERENCES fee_items (id),
    PRIMARY KEY (run_id, fee_item_id)
);

-- One pupil's charge for one item in one run, as posted (net of exemptions).
CREATE TABLE school_charges (
    id BLOB PRIMARY KEY NOT NULL,
    run_id BLOB NOT NULL REFERENCES collection_runs (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    class_id BLOB NOT NULL REFERENCES school_classes (id),
    fee_item_id BLOB NOT NULL REFERENCES fee_items (id),
    gross INTEGER NOT NULL CHECK (gross >= 0),
    exemption INTEGER NOT NULL CHECK (exemption >= 0),
    amount INTEGER NOT NULL CHECK (amount > 0),
    -- Kept up to date with the allocations that pay it, in the same transaction.
    paid INTEGER NOT NULL CHECK (paid >= 0),
    ledger_transaction_id BLOB NOT NULL REFERENCES transactions (id),
    created_at INTEGER NOT NULL,
    UNIQUE (run_id, pupil_id, fee_item_id),
    CHECK (paid <= amount)
);
CREATE INDEX school_charges_pupil ON school_charges (pupil_id, created_at);
CREATE INDEX school_charges_run_class ON school_charges (run_id, class_id);

-- The QR of one pupil for one run.
CREATE TABLE school_run_intents (
    run_id BLOB NOT NULL REFERENCES collection_runs (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    intent_id BLOB NOT NULL UNIQUE REFERENCES payment_intents (id),
    PRIMARY KEY (run_id, pupil_id)
);

-- Money received for a pupil (online or cash) and its ledger posting.
CREATE TABLE school_payments (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    method TEXT NOT NULL CHECK (method IN ('online', 'cash')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    ledger_transaction_id BLOB NOT NULL REFERENCES transactions (id),
    bank_transaction_id BLOB,
    receipt_id BLOB,
    -- Set when the payment is undone (a cancelled receipt); its allocations no longer count.
    cancelled_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX school_payments_pupil ON school_payments (pupil_id, created_at);

-- Which charge a payment paid, by how much. What a payment did not allocate is the pupil's
-- credit, allocated to the next charges.
CREATE TABLE school_allocations (
    id BLOB PRIMARY KEY NOT NULL,
    payment_id BLOB NOT NULL REFERENCES school_payments (id),
    charge_id BLOB NOT NULL REFERENCES school_charges (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    ledger_transaction_id BLOB NOT NULL REFERENCES transactions (id),
    cancelled_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX school_allocations_charge ON school_allocations (charge_id);
CREATE INDEX school_allocations_payment ON school_allocations (payment_id);

-- The last receipt number of a school in a school year: taken and bumped in the transaction
-- that writes the receipt, so numbers have no gaps.
CREATE TABLE school_receipt_counters (
    school_id BLOB NOT NULL REFERENCES payees (id),
    year_id BLOB NOT NULL REFERENCES school_years (id),
    last_number INTEGER NOT NULL,
    PRIMARY KEY (school_id, year_id)
);

CREATE TABLE school_receipts (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    year_id BLOB NOT NULL REFERENCES school_years (id),
    number INTEGER NOT NULL,
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    payer_name TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    payment_id BLOB NOT NULL REFERENCES school_payments (id),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    cancelled_at INTEGER,
    cancelled_by TEXT,
    cancel_reason TEXT,
    cancel_transaction_id BLOB REFERENCES transactions (id),
    UNIQUE (school_id, year_id, number)
);

-- A parent's read-only link to a pupil's open charges: only the SHA-256 of the token is kept.
CREATE TABLE school_parent_links (
    id BLOB PRIMARY KEY NOT NULL,
    school_id BLOB NOT NULL REFERENCES payees (id),
    pupil_id BLOB NOT NULL REFERENCES pupils (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
