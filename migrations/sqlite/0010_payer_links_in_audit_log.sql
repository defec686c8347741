-- Payer-account links and unlinks are recorded in the audit trail (audit_log) like every other
-- change a person makes: the rows of payer_link_audit move there, and the table goes.
-- Same names as migrations/postgres/0010_payer_links_in_audit_log.sql.

-- A UUID stored as 16 bytes, as the text the service writes in JSON (NULL stays NULL).
CREATE TEMPORARY VIEW payer_link_moved AS
SELECT a.*,
       CASE WHEN a.resident_id IS NULL THEN NULL ELSE lower(
           substr(hex(a.resident_id), 1, 8) || '-' || substr(hex(a.resident_id), 9, 4) || '-' ||
           substr(hex(a.resident_id), 13, 4) || '-' || substr(hex(a.resident_id), 17, 4) || '-' ||
           substr(hex(a.resident_id), 21)) END AS resident_text,
       CASE WHEN a.household_id IS NULL THEN NULL ELSE lower(
           substr(hex(a.household_id), 1, 8) || '-' || substr(hex(a.household_id), 9, 4) || '-' ||
           substr(hex(a.household_id), 13, 4) || '-' || substr(hex(a.household_id), 17, 4) || '-' ||
           substr(hex(a.household_id), 21)) END AS household_text
FROM payer_link_audit a;

INSERT INTO audit_log (id, recorded_at, actor_id, actor_name, action, target_kind, target_id,
                       before_state, after_state, request_id)
SELECT m.id, m.at,
       COALESCE((SELECT u.id FROM users u WHERE u.username = m.actor),
                X'00000000000000000000000000000000'),
       m.actor, 'payer_account.' || m.action, 'payer_account', m.account_hash,
       CASE WHEN m.action = 'unlink'
            THEN json_object('resident_id', m.resident_text, 'household_id', m.household_text)
            ELSE json_object('resident_id', NULL, 'household_id', NULL) END,
       CASE WHEN m.action = 'link'
            THEN json_object('resident_id', m.resident_text, 'household_id', m.household_text,
                             'reason', m.reason)
            ELSE json_object('resident_id', NULL, 'household_id', NULL, 'reason', m.reason) END,
       NULL
FROM payer_link_moved m;

DROP VIEW payer_link_moved;
DROP TABLE payer_link_audit;
