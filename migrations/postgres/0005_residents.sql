-- The commune's registry (hamlets, households, residents), what links payments to the
-- residents who made them, cash payments and door-to-door surveys: the facts the adoption
-- statistics count. Same tables and names as migrations/sqlite/0005_residents.sql. Times are
-- microseconds since the Unix epoch (UTC); dates are Vietnam calendar days; amounts are đồng.

-- A hamlet (xóm). A merge or rename closes the old code (valid_to, merged_into) and opens a
-- new one, so a report for a past month still uses that month's hamlets.
CREATE TABLE hamlets (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    valid_from DATE NOT NULL,
    -- Last day the hamlet existed; NULL while it exists.
    valid_to DATE,
    merged_into TEXT REFERENCES hamlets (code),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE TABLE households (
    id UUID PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    hamlet_code TEXT NOT NULL REFERENCES hamlets (code),
    address TEXT NOT NULL,
    -- A resident of this household; not a foreign key, as the household exists first.
    head_resident_id UUID,
    moved_in_on DATE,
    moved_out_on DATE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX households_hamlet ON households (hamlet_code);

CREATE TABLE residents (
    id UUID PRIMARY KEY,
    -- The commune's own code for the person (or the import's), the key re-imports upsert on.
    code TEXT NOT NULL UNIQUE,
    household_id UUID NOT NULL REFERENCES households (id),
    full_name TEXT NOT NULL,
    -- full_name without diacritics, lower case: what name search compares.
    name_search TEXT NOT NULL,
    birth_year INTEGER NOT NULL,
    birth_date DATE,
    gender TEXT NOT NULL CHECK (gender IN ('female', 'male', 'other', 'unknown')),
    phone TEXT,
    status TEXT NOT NULL CHECK (status IN ('living', 'moved_away', 'deceased')),
    -- Since when the resident lives here (NULL: before the registry began), and the day the
    -- status became moved_away or deceased.
    living_since DATE,
    left_on DATE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((status = 'living') = (left_on IS NULL))
);
CREATE INDEX residents_household ON residents (household_id);
CREATE INDEX residents_name_search ON residents (name_search);

-- Consent to link the resident's payments for statistics: the one in force on a day is the
-- latest with effective_on on or before it. Never updated, only appended.
CREATE TABLE resident_consents (
    id UUID PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id),
    given BOOLEAN NOT NULL,
    effective_on DATE NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX resident_consents_resident ON resident_consents (resident_id, effective_on);

-- A payer's bank account, known only by HMAC-SHA256(pepper, bin:account number) and its last
-- four digits, and whom it belongs to once staff (or the registry) linked it.
CREATE TABLE payer_accounts (
    account_hash TEXT PRIMARY KEY,
    last4 TEXT NOT NULL,
    resident_id UUID REFERENCES residents (id),
    household_id UUID REFERENCES households (id),
    linked_at BIGINT,
    linked_by TEXT,
    CHECK (resident_id IS NULL OR household_id IS NULL)
);
CREATE INDEX payer_accounts_resident ON payer_accounts (resident_id);

-- Who linked or unlinked which payer account, when and why.
CREATE TABLE payer_link_audit (
    id UUID PRIMARY KEY,
    account_hash TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('link', 'unlink')),
    resident_id UUID,
    household_id UUID,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX payer_link_audit_account ON payer_link_audit (account_hash, at);

-- The payer's account as the feed reported it, keyed-hashed; NULL when the feed sends none.
ALTER TABLE bank_transactions ADD COLUMN payer_account_hash TEXT;
CREATE INDEX bank_transactions_payer ON bank_transactions (payer_account_hash);
-- Statistics read incoming money by time across all accounts.
CREATE INDEX bank_transactions_incoming_time ON bank_transactions (occurred_at)
    WHERE direction = 'in';

-- An intent may name who pays it (a pupil's household); its payments count for that payer.
ALTER TABLE payment_intents ADD COLUMN payer_resident_id UUID REFERENCES residents (id);
ALTER TABLE payment_intents ADD COLUMN payer_household_id UUID REFERENCES households (id);

-- The resident who runs a payee (a vendor at the market): money the payee receives online
-- counts as that resident receiving online payments.
ALTER TABLE payees ADD COLUMN owner_resident_id UUID REFERENCES residents (id);

-- Cash a payee recorded (one payment, or a day's cash sales as one total). Never online.
CREATE TABLE cash_payments (
    id UUID PRIMARY KEY,
    payee_id UUID NOT NULL REFERENCES payees (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    -- How many payments the amount sums (a day's total of cash sales: its count).
    payment_count INTEGER NOT NULL CHECK (payment_count > 0),
    occurred_at BIGINT NOT NULL,
    payer_resident_id UUID REFERENCES residents (id),
    payer_household_id UUID REFERENCES households (id),
    note TEXT,
    recorded_by UUID NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX cash_payments_time ON cash_payments (occurred_at);

-- One answer of a door-to-door survey: did the resident pay online in the last 12 months.
CREATE TABLE survey_responses (
    id UUID PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id),
    surveyed_on DATE NOT NULL,
    used_online_payment BOOLEAN NOT NULL,
    channel TEXT,
    imported_at BIGINT NOT NULL,
    UNIQUE (resident_id, surveyed_on)
);
CREATE INDEX survey_responses_day ON survey_responses (surveyed_on);

-- Every read of individual-level data (which resident paid), by whom and why.
CREATE TABLE personal_data_access (
    id UUID PRIMARY KEY,
    actor TEXT NOT NULL,
    what TEXT NOT NULL,
    subject TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX personal_data_access_at ON personal_data_access (at, id);
