-- Payer-account links and unlinks are recorded in the audit trail (audit_log) like every other
-- change a person makes: the rows of payer_link_audit move there, and the table goes.
-- Same names as migrations/sqlite/0010_payer_links_in_audit_log.sql.

INSERT INTO audit_log (id, recorded_at, actor_id, actor_name, action, target_kind, target_id,
                       before_state, after_state, request_id)
SELECT a.id, a.at,
       COALESCE((SELECT u.id FROM users u WHERE u.username = a.actor),
                '00000000-0000-0000-0000-000000000000'::uuid),
       a.actor, 'payer_account.' || a.action, 'payer_account', a.account_hash,
       CASE WHEN a.action = 'unlink'
            THEN json_build_object('resident_id', a.resident_id, 'household_id', a.household_id)
            ELSE json_build_object('resident_id', NULL, 'household_id', NULL) END::text,
       CASE WHEN a.action = 'link'
            THEN json_build_object('resident_id', a.resident_id, 'household_id', a.household_id,
                                   'reason', a.reason)
            ELSE json_build_object('resident_id', NULL, 'household_id', NULL, 'reason', a.reason)
       END::text,
       NULL
FROM payer_link_audit a;

DROP TABLE payer_link_audit;
