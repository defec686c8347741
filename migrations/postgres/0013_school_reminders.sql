-- Reminders to parents of unpaid school charges. Same table and names as
-- migrations/sqlite/0015_school_reminders.sql.

-- One row per charge reminded on a Vietnam calendar day. The primary key is the rule that a
-- charge is never reminded twice on one day: a send claims its charges here ('sending', in
-- a committed transaction) before it calls the notifier; a delivered message turns them
-- 'sent'; a failed one deletes them, so the same day may try again.
CREATE TABLE school_reminders (
    charge_id UUID NOT NULL REFERENCES school_charges (id),
    sent_on DATE NOT NULL,
    school_id UUID NOT NULL REFERENCES payees (id),
    -- The message that carries the charge: the same charges on the same day give the same id,
    -- which the gateway can use to drop a message it got twice.
    message_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
    claimed_by TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    sent_at BIGINT,
    PRIMARY KEY (charge_id, sent_on)
);
CREATE INDEX school_reminders_message ON school_reminders (message_id);
