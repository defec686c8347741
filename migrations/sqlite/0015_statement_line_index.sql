-- A feed record's possible-duplicate check looks for statement lines of its amount near its
-- time. An index of the statement lines alone answers it however many feed records the account
-- receives, and costs the feed records nothing to write. The index of every record by amount
-- it replaces served only this check, and PostgreSQL, before its statistics of a growing
-- table caught up, walked every record of the account within the day instead.
DROP INDEX bank_transactions_account_amount;
CREATE INDEX bank_transactions_statement_lines
    ON bank_transactions (collection_account_id, amount, occurred_at)
    WHERE substr(provider_transaction_id, 1, 10) = 'statement:';
