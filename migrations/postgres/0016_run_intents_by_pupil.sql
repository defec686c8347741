-- A pupil's open QR codes are looked up by pupil (the cash desk, corrections and a household
-- QR's split renew them, and lock them first); the table's key starts with the run.
CREATE INDEX school_run_intents_pupil ON school_run_intents (pupil_id);
