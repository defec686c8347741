-- One QR per household for all its children's open school charges. Same names as
-- migrations/sqlite/0009_household_payments.sql.

-- A payment intent that pays the open charges of every pupil naming the household, at every
-- school collecting into the intent's collection account (see the README: household QR).
CREATE TABLE household_payment_intents (
    intent_id UUID PRIMARY KEY NOT NULL REFERENCES payment_intents (id),
    household_id UUID NOT NULL REFERENCES households (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX household_payment_intents_household ON household_payment_intents (household_id, created_at);
