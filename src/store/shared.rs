//! The SQL both backends share, written once. `impl_store!` expands it for a concrete sqlx
//! database type; each backend supplies `pool`, `begin_write` (how a write transaction starts
//! and serializes), `begin_snapshot` (a consistent read), `run_migrations`, `gate_accounts`
//! (in-process queueing before row locks), and the three bulk
//! statements of the posting path (`insert_transactions`, `lock_accounts`, `write_postings`):
//! PostgreSQL binds whole arrays to one prepared statement, SQLite has no arrays.

/// Rows per multi-row INSERT/UPDATE statement, well under both backends' bind limits.
pub(super) const CHUNK_ROWS: usize = 500;

macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_user(
                &self,
                user: &$crate::domain::user::User,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let result = sqlx::query(
                    "INSERT INTO users (id, username, password_hash, role, payee_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .bind(user.payee_id)
                .bind(now)
                .execute(&self.pool)
                .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err($crate::store::StoreError::UsernameTaken)
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn find_user(
                &self,
                username: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::user::User>> {
                let row: Option<$crate::store::rows::UserRow> = sqlx::query_as(
                    "SELECT id, username, password_hash, role, payee_id FROM users \
                     WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_domain()).transpose()
            }

            async fn record_login_attempt(
                &self,
                username: &str,
                now: i64,
                window_micros: i64,
            ) -> $crate::store::StoreResult<(i64, i64)> {
                let row: (i64, i64) = sqlx::query_as(
                    "INSERT INTO login_throttle (username, failures, window_started_at) \
                     VALUES ($1, 1, $2) \
                     ON CONFLICT (username) DO UPDATE SET \
                       failures = CASE WHEN login_throttle.window_started_at < $3 \
                         THEN 1 ELSE login_throttle.failures + 1 END, \
                       window_started_at = CASE WHEN login_throttle.window_started_at < $3 \
                         THEN $2 ELSE login_throttle.window_started_at END \
                     RETURNING CAST(failures AS BIGINT), window_started_at",
                )
                .bind(username)
                .bind(now)
                .bind(now - window_micros)
                .fetch_one(&self.pool)
                .await?;
                Ok(row)
            }

            async fn clear_login_failures(&self, username: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM login_throttle WHERE username = $1")
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_account(
                &self,
                account: &$crate::domain::account::NewAccount,
                id: uuid::Uuid,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::domain::account::Account> {
                let result = sqlx::query(
                    "INSERT INTO accounts (id, code, name, kind, currency, \
                     debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(account.code.as_str())
                .bind(&account.name)
                .bind(account.kind.as_str())
                .bind(account.currency.code())
                .bind(account.flags.debits_must_not_exceed_credits)
                .bind(account.flags.credits_must_not_exceed_debits)
                .bind(now)
                .execute(&self.pool)
                .await;
                match result {
                    Ok(_) => Ok($crate::domain::account::Account {
                        id,
                        code: account.code.as_str().to_owned(),
                        name: account.name.clone(),
                        kind: account.kind,
                        currency: account.currency,
                        flags: account.flags,
                        created_at: now,
                    }),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err($crate::store::StoreError::AccountCodeTaken)
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn find_accounts(
                &self,
                ids: &[uuid::Uuid],
                codes: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::domain::account::Account>> {
                let mut found = Vec::new();
                for ids in ids.chunks($crate::store::shared::CHUNK_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM accounts WHERE id IN (",
                        $crate::store::rows::ACCOUNT_COLUMNS
                    ));
                    let mut list = query.separated(", ");
                    ids.iter().for_each(|id| {
                        list.push_bind(*id);
                    });
                    query.push(")");
                    found.extend(query.build_query_as().fetch_all(&self.pool).await?);
                }
                for codes in codes.chunks($crate::store::shared::CHUNK_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM accounts WHERE code IN (",
                        $crate::store::rows::ACCOUNT_COLUMNS
                    ));
                    let mut list = query.separated(", ");
                    codes.iter().for_each(|code| {
                        list.push_bind(code.as_str());
                    });
                    query.push(")");
                    found.extend(query.build_query_as().fetch_all(&self.pool).await?);
                }
                found
                    .into_iter()
                    .map(|row: $crate::store::rows::AccountRow| Ok(row.into_domain()?.0))
                    .collect()
            }

            async fn account_with_balance(
                &self,
                id: uuid::Uuid,
                as_of: Option<i64>,
            ) -> $crate::store::StoreResult<Option<$crate::store::AccountWithBalance>> {
                let row: Option<$crate::store::rows::AccountRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM accounts WHERE id = $1",
                    $crate::store::rows::ACCOUNT_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let (account, mut balance) = row.into_domain()?;
                if let Some(as_of) = as_of {
                    let (debits, credits, count): (i64, i64, i64) = sqlx::query_as(
                        "SELECT \
                           CAST(COALESCE(SUM(CASE WHEN is_debit THEN amount ELSE 0 END), 0) AS BIGINT), \
                           CAST(COALESCE(SUM(CASE WHEN is_debit THEN 0 ELSE amount END), 0) AS BIGINT), \
                           COUNT(*) \
                         FROM entries WHERE account_id = $1 AND effective_at <= $2",
                    )
                    .bind(id)
                    .bind(as_of)
                    .fetch_one(&self.pool)
                    .await?;
                    balance = $crate::domain::account::Balance {
                        debits_posted: debits,
                        credits_posted: credits,
                        entry_count: count,
                    };
                }
                Ok(Some($crate::store::AccountWithBalance { account, balance }))
            }

            async fn list_accounts(
                &self,
                filter: &$crate::store::AccountFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AccountWithBalance>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM accounts WHERE 1 = 1",
                    $crate::store::rows::ACCOUNT_COLUMNS
                ));
                if let Some(kind) = filter.kind {
                    query.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(currency) = filter.currency {
                    query.push(" AND currency = ").push_bind(currency.code());
                }
                if let Some(prefix) = &filter.code_prefix {
                    query
                        .push(" AND substr(code, 1, ")
                        .push_bind(prefix.chars().count() as i32)
                        .push(") = ")
                        .push_bind(prefix.clone());
                }
                if let Some(after) = filter.after {
                    query.push(" AND id > ").push_bind(after);
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows: Vec<$crate::store::rows::AccountRow> =
                    query.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter()
                    .map(|row| {
                        let (account, balance) = row.into_domain()?;
                        Ok($crate::store::AccountWithBalance { account, balance })
                    })
                    .collect()
            }

            async fn list_entries(
                &self,
                account_id: uuid::Uuid,
                after_seq: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::transaction::Entry>> {
                let rows: Vec<$crate::store::rows::EntryRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM entries WHERE account_id = $1 AND account_seq > $2 \
                     ORDER BY account_seq LIMIT $3",
                    $crate::store::rows::ENTRY_COLUMNS
                ))
                .bind(account_id)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn post_transactions(
                &self,
                created_by: uuid::Uuid,
                claim: Option<&$crate::store::IdempotencyClaim>,
                transactions: &[$crate::domain::transaction::NewTransaction],
                mode: $crate::store::WriteMode,
                respond: $crate::store::Responder<'_>,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::Idempotent<$crate::store::PostResults>>
            {
                use $crate::store::{Idempotent, WriteMode};

                let (_write_guard, mut tx) = self.begin_write().await?;
                // All-or-nothing writes either commit every transaction or nothing, so their
                // response is known now and is stored with the key in one statement.
                let response_now = (mode == WriteMode::AllOrNothing)
                    .then(|| respond(&vec![Ok(()); transactions.len()]));
                if let Some(claim) = claim {
                    if let Some(replay) = Self::claim_key(&mut tx, claim, response_now.as_ref(), now).await? {
                        tx.rollback().await?;
                        return replay.map(Idempotent::Replay);
                    }
                }

                let items: Vec<(&$crate::domain::transaction::NewTransaction, uuid::Uuid)> =
                    transactions.iter().map(|t| (t, created_by)).collect();
                let mut results = Self::check_unique(&mut tx, &items).await?;
                let all_or_nothing = mode == WriteMode::AllOrNothing;
                if all_or_nothing {
                    if results.iter().any(Result::is_err) {
                        tx.rollback().await?;
                        return Ok(Idempotent::Fresh(results));
                    }
                }
                let written = self
                    .apply_and_write(&mut tx, &items, &mut results, all_or_nothing)
                    .await?;
                if !written {
                    tx.rollback().await?;
                    return Ok(Idempotent::Fresh(results));
                }
                if let (Some(claim), None) = (claim, &response_now) {
                    Self::store_key_response(&mut tx, claim, &respond(&results)).await?;
                }
                tx.commit().await?;
                Ok(Idempotent::Fresh(results))
            }

            async fn post_singles(
                &self,
                writes: &[$crate::store::SingleWrite<'_>],
            ) -> $crate::store::StoreResult<Vec<$crate::store::SingleOutcome>> {
                use $crate::store::{SingleOutcome, StoreError};

                let (_write_guard, mut tx) = self.begin_write().await?;
                // Claimed in key order, so two flushes holding the same keys cannot deadlock.
                let mut order: Vec<usize> = (0..writes.len()).collect();
                order.sort_by(|a, b| {
                    let (a, b) = (writes[*a].claim, writes[*b].claim);
                    (a.user_id, &a.key).cmp(&(b.user_id, &b.key))
                });
                let mut outcomes: Vec<Option<SingleOutcome>> = vec![None; writes.len()];
                for index in order {
                    let write = &writes[index];
                    if let Some(earlier) = Self::claim_key(&mut tx, write.claim, Some(write.response), write.transaction.created_at).await? {
                        outcomes[index] = Some(match earlier {
                            Ok(stored) => SingleOutcome::Replay(stored),
                            Err(StoreError::IdempotencyKeyReused) => SingleOutcome::KeyReused,
                            Err(_) => SingleOutcome::KeyInProgress,
                        });
                    }
                }
                let claimed: Vec<usize> = (0..writes.len()).filter(|i| outcomes[*i].is_none()).collect();
                let items: Vec<(&$crate::domain::transaction::NewTransaction, uuid::Uuid)> = claimed
                    .iter()
                    .map(|i| (writes[*i].transaction, writes[*i].created_by))
                    .collect();
                let mut results = Self::check_unique(&mut tx, &items).await?;
                self.apply_and_write(&mut tx, &items, &mut results, false).await?;
                for (index, result) in claimed.iter().zip(results) {
                    outcomes[*index] = Some(match result {
                        Ok(()) => SingleOutcome::Posted,
                        Err(rejection) => {
                            // A refused request leaves no key behind: it may be corrected and
                            // sent again with the same key.
                            let claim = writes[*index].claim;
                            sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                                .bind(claim.user_id)
                                .bind(&claim.key)
                                .execute(&mut *tx)
                                .await?;
                            SingleOutcome::Rejected(rejection)
                        }
                    });
                }
                tx.commit().await?;
                Ok(outcomes.into_iter().map(|o| o.expect("every write has an outcome")).collect())
            }

            async fn transaction(
                &self,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Option<$crate::store::StoredTransaction>> {
                let filter = $crate::store::TransactionFilter::default();
                let mut found = self.load_transactions(&filter, Some(id)).await?;
                Ok(found.pop())
            }

            async fn list_transactions(
                &self,
                filter: &$crate::store::TransactionFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoredTransaction>> {
                self.load_transactions(filter, None).await
            }

            async fn verify(&self) -> $crate::store::StoreResult<$crate::store::VerifyReport> {
                use $crate::store::Violation;
                let mut tx = self.begin_snapshot().await?;
                let mut violations = Vec::new();

                let unbalanced: Vec<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT transaction_id FROM entries GROUP BY transaction_id \
                     HAVING SUM(CASE WHEN is_debit THEN amount ELSE -amount END) <> 0 \
                        OR COUNT(*) < 2",
                )
                .fetch_all(&mut *tx)
                .await?;
                violations.extend(unbalanced.into_iter().map(|(id,)| Violation {
                    kind: "TRANSACTION_UNBALANCED",
                    detail: format!("transaction {id}: debits and credits differ"),
                }));

                let empty: Vec<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT t.id FROM transactions t \
                     WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id)",
                )
                .fetch_all(&mut *tx)
                .await?;
                violations.extend(empty.into_iter().map(|(id,)| Violation {
                    kind: "TRANSACTION_WITHOUT_ENTRIES",
                    detail: format!("transaction {id} has no entries"),
                }));

                let (transactions_checked, accounts_checked): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM transactions), (SELECT COUNT(*) FROM accounts)",
                )
                .fetch_one(&mut *tx)
                .await?;

                let (total_debits, total_credits): (String, String) = sqlx::query_as(
                    "SELECT \
                       CAST(COALESCE(SUM(CASE WHEN is_debit THEN amount ELSE 0 END), 0) AS TEXT), \
                       CAST(COALESCE(SUM(CASE WHEN is_debit THEN 0 ELSE amount END), 0) AS TEXT) \
                     FROM entries",
                )
                .fetch_one(&mut *tx)
                .await?;
                if total_debits != total_credits {
                    violations.push(Violation {
                        kind: "LEDGER_UNBALANCED",
                        detail: format!(
                            "total debits {total_debits} differ from total credits {total_credits}"
                        ),
                    });
                }

                let mismatched: Vec<$crate::store::rows::AccountMismatchRow> = sqlx::query_as(
                    "SELECT a.code, a.debits_posted, a.credits_posted, a.entry_count, \
                       COALESCE(e.debits, 0) AS entry_debits, \
                       COALESCE(e.credits, 0) AS entry_credits, \
                       COALESCE(e.entries, 0) AS entries \
                     FROM accounts a LEFT JOIN ( \
                       SELECT account_id, \
                         CAST(SUM(CASE WHEN is_debit THEN amount ELSE 0 END) AS BIGINT) AS debits, \
                         CAST(SUM(CASE WHEN is_debit THEN 0 ELSE amount END) AS BIGINT) AS credits, \
                         COUNT(*) AS entries, MAX(account_seq) AS last_seq \
                       FROM entries GROUP BY account_id) e ON e.account_id = a.id \
                     WHERE a.debits_posted <> COALESCE(e.debits, 0) \
                        OR a.credits_posted <> COALESCE(e.credits, 0) \
                        OR a.entry_count <> COALESCE(e.entries, 0) \
                        OR a.entry_count <> COALESCE(e.last_seq, 0)",
                )
                .fetch_all(&mut *tx)
                .await?;
                violations.extend(mismatched.into_iter().map(|m| Violation {
                    kind: "ACCOUNT_BALANCE_MISMATCH",
                    detail: format!(
                        "account {}: stored debits {} credits {} entries {}, \
                         entries sum to debits {} credits {} over {} entries",
                        m.code,
                        m.debits_posted,
                        m.credits_posted,
                        m.entry_count,
                        m.entry_debits,
                        m.entry_credits,
                        m.entries
                    ),
                }));

                // Each entry's running totals are what the balance history (`as_of`, the
                // entries list) shows, so they must add up entry by entry, not just in sum.
                let miscounted: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT a.code, CAST(r.account_seq AS BIGINT) FROM ( \
                       SELECT account_id, account_seq, debits_after, credits_after, \
                         SUM(CASE WHEN is_debit THEN amount ELSE 0 END) \
                           OVER (PARTITION BY account_id ORDER BY account_seq) AS debits, \
                         SUM(CASE WHEN is_debit THEN 0 ELSE amount END) \
                           OVER (PARTITION BY account_id ORDER BY account_seq) AS credits \
                       FROM entries) r JOIN accounts a ON a.id = r.account_id \
                     WHERE r.debits_after <> r.debits OR r.credits_after <> r.credits \
                     ORDER BY a.code, r.account_seq",
                )
                .fetch_all(&mut *tx)
                .await?;
                violations.extend(miscounted.into_iter().map(|(code, seq)| Violation {
                    kind: "ENTRY_RUNNING_TOTAL_WRONG",
                    detail: format!(
                        "account {code}: entry {seq} does not carry the running totals of the \
                         entries before it"
                    ),
                }));

                let broken: Vec<(String,)> = sqlx::query_as(
                    "SELECT code FROM accounts WHERE \
                       (debits_must_not_exceed_credits AND debits_posted > credits_posted) \
                       OR (credits_must_not_exceed_debits AND credits_posted > debits_posted)",
                )
                .fetch_all(&mut *tx)
                .await?;
                violations.extend(broken.into_iter().map(|(code,)| Violation {
                    kind: "ACCOUNT_FLAG_BROKEN",
                    detail: format!("account {code} breaks its balance flag"),
                }));

                tx.rollback().await?;
                Ok($crate::store::VerifyReport {
                    transactions_checked,
                    accounts_checked,
                    total_debits,
                    total_credits,
                    violations,
                })
            }

            async fn delete_idempotency_keys_before(
                &self,
                cutoff: i64,
            ) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        impl $store {
            /// Claims an idempotency key in the write transaction. `None`: the key is new and
            /// now held. `Some`: an earlier request holds it; the stored response to replay, or
            /// why it cannot be replayed.
            pub(super) async fn claim_key(
                tx: &mut sqlx::Transaction<'static, $db>,
                claim: &$crate::store::IdempotencyClaim,
                response: Option<&$crate::store::StoredResponse>,
                now: i64,
            ) -> $crate::store::StoreResult<
                Option<$crate::store::StoreResult<$crate::store::StoredResponse>>,
            > {
                use $crate::store::StoreError;
                // The key row can vanish between the two statements (the hourly cleanup of
                // old keys), so a miss on the read tries the insert again.
                let stored = loop {
                    // On PostgreSQL this waits for a concurrent holder of the same key to
                    // finish, so a duplicate sees its committed response instead of racing it.
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys \
                         (user_id, key, request_hash, status_code, response_body, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING",
                    )
                    .bind(claim.user_id)
                    .bind(&claim.key)
                    .bind(&claim.request_hash)
                    .bind(response.map(|r| i32::from(r.status)))
                    .bind(response.map(|r| r.body.as_str()))
                    .bind(now)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if inserted == 1 {
                        return Ok(None);
                    }
                    let stored: Option<$crate::store::rows::IdempotencyRow> = sqlx::query_as(
                        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
                         WHERE user_id = $1 AND key = $2",
                    )
                    .bind(claim.user_id)
                    .bind(&claim.key)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some(stored) = stored {
                        break stored;
                    }
                };
                Ok(Some(if stored.request_hash != claim.request_hash {
                    Err(StoreError::IdempotencyKeyReused)
                } else {
                    match (stored.status_code, stored.response_body) {
                        (Some(status), Some(body)) => Ok($crate::store::StoredResponse {
                            status: status as u16,
                            body,
                        }),
                        _ => Err(StoreError::IdempotencyKeyInProgress),
                    }
                }))
            }

            /// Completes a key claimed without a response (`claim_key(.., None)`) with the
            /// response its request produced, in the same database transaction.
            pub(super) async fn store_key_response(
                tx: &mut sqlx::Transaction<'static, $db>,
                claim: &$crate::store::IdempotencyClaim,
                response: &$crate::store::StoredResponse,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE idempotency_keys SET status_code = $1, response_body = $2 \
                     WHERE user_id = $3 AND key = $4",
                )
                .bind(i32::from(response.status))
                .bind(&response.body)
                .bind(claim.user_id)
                .bind(&claim.key)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Refuses transactions whose id is taken or whose original is already reversed,
            /// in the database or earlier in the same list. Generated ids cannot collide and a
            /// new transaction reverses nothing, so the common case skips the read; a
            /// concurrent write of the same id or reversal hits the unique constraints instead,
            /// and the retry lands here.
            async fn check_unique(
                tx: &mut sqlx::Transaction<'static, $db>,
                items: &[(&$crate::domain::transaction::NewTransaction, uuid::Uuid)],
            ) -> $crate::store::StoreResult<$crate::store::PostResults> {
                use std::collections::HashSet;
                use $crate::store::PostRejection;
                let mut taken_ids: HashSet<uuid::Uuid> = HashSet::new();
                let mut reversed: HashSet<uuid::Uuid> = HashSet::new();
                let to_check: Vec<&$crate::domain::transaction::NewTransaction> = items
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| t.id_from_client || t.reversal_of.is_some())
                    .collect();
                for chunk in to_check.chunks($crate::store::shared::CHUNK_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, reversal_of FROM transactions WHERE id IN (",
                    );
                    let mut list = query.separated(", ");
                    chunk.iter().for_each(|t| {
                        list.push_bind(t.id);
                    });
                    query.push(") OR reversal_of IN (");
                    let mut list = query.separated(", ");
                    chunk.iter().for_each(|t| {
                        list.push_bind(t.reversal_of.unwrap_or(t.id));
                    });
                    query.push(")");
                    let rows: Vec<(uuid::Uuid, Option<uuid::Uuid>)> =
                        query.build_query_as().fetch_all(&mut **tx).await?;
                    for (id, reversal_of) in rows {
                        taken_ids.insert(id);
                        reversed.extend(reversal_of);
                    }
                }
                Ok(items
                    .iter()
                    .map(|(transaction, _)| {
                        if !taken_ids.insert(transaction.id) {
                            Err(PostRejection::TransactionExists(transaction.id))
                        } else if let Some(original) =
                            transaction.reversal_of.filter(|original| !reversed.insert(*original))
                        {
                            Err(PostRejection::AlreadyReversed(original))
                        } else {
                            Ok(())
                        }
                    })
                    .collect())
            }

            /// Locks the accounts of the transactions still accepted in `results`, applies them
            /// in order (a refused one leaves no trace and is marked in `results`), then writes
            /// balances, entries and the accepted transaction rows. When `all_or_nothing`, any
            /// refusal writes nothing: returns false, for the caller to roll back.
            ///
            /// Transaction rows are inserted only here, behind the account gate and locks: a
            /// writer waiting on another's uncommitted transaction id (a unique conflict) while
            /// holding a gate the other needs would be a deadlock the database cannot see.
            async fn apply_and_write(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                items: &[(&$crate::domain::transaction::NewTransaction, uuid::Uuid)],
                results: &mut [Result<(), $crate::store::PostRejection>],
                all_or_nothing: bool,
            ) -> $crate::store::StoreResult<bool> {
                use std::collections::{BTreeSet, HashMap};
                use $crate::domain::transaction::{apply, LockedAccount};

                // Locked in id order, so concurrent writers never wait on each other in a cycle.
                let account_ids: BTreeSet<uuid::Uuid> = items
                    .iter()
                    .zip(results.iter())
                    .filter(|(_, result)| result.is_ok())
                    .flat_map(|((t, _), _)| t.account_ids())
                    .collect();
                let account_ids: Vec<uuid::Uuid> = account_ids.into_iter().collect();
                let _account_gates = self.gate_accounts(&account_ids).await;
                let mut accounts: HashMap<uuid::Uuid, LockedAccount> =
                    Self::lock_accounts(tx, &account_ids).await?;
                if accounts.len() != account_ids.len() {
                    return Err($crate::store::StoreError::Corrupt(
                        "a resolved account disappeared before posting".into(),
                    ));
                }

                let mut accepted = Vec::with_capacity(items.len());
                let mut entries = Vec::with_capacity(items.len() * 2);
                for (item, result) in items.iter().zip(results.iter_mut()) {
                    if result.is_err() {
                        continue;
                    }
                    match apply(&mut accounts, item.0) {
                        Ok(posted) => {
                            entries.extend(posted);
                            accepted.push(*item);
                        }
                        Err(rejection) => *result = Err(rejection.into()),
                    }
                }
                if all_or_nothing && accepted.len() != items.len() {
                    return Ok(false);
                }
                Self::write_applied(tx, &account_ids, &accounts, &accepted, &entries).await?;
                Ok(true)
            }

            /// Writes applied transactions: their rows, the entries, and the new totals of the
            /// accounts they touched (of `account_ids`, the locked ones, in lock order).
            pub(super) async fn write_applied(
                tx: &mut sqlx::Transaction<'static, $db>,
                account_ids: &[uuid::Uuid],
                accounts: &std::collections::HashMap<
                    uuid::Uuid,
                    $crate::domain::transaction::LockedAccount,
                >,
                accepted: &[(&$crate::domain::transaction::NewTransaction, uuid::Uuid)],
                entries: &[$crate::domain::transaction::Entry],
            ) -> $crate::store::StoreResult<()> {
                let touched_ids: std::collections::HashSet<uuid::Uuid> =
                    entries.iter().map(|e| e.account_id).collect();
                let touched: Vec<(uuid::Uuid, $crate::domain::transaction::LockedAccount)> =
                    account_ids
                        .iter()
                        .filter(|id| touched_ids.contains(id))
                        .map(|id| (*id, accounts[id]))
                        .collect();
                Self::insert_transactions(tx, accepted).await?;
                Self::write_postings(tx, &touched, entries).await
            }

            /// Loads one transaction by id, or a filtered page, each with its entries.
            async fn load_transactions(
                &self,
                filter: &$crate::store::TransactionFilter,
                id: Option<uuid::Uuid>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoredTransaction>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM transactions t WHERE 1 = 1",
                    $crate::store::rows::TRANSACTION_COLUMNS
                ));
                if let Some(id) = id {
                    query.push(" AND t.id = ").push_bind(id);
                }
                if let Some(account_id) = filter.account_id {
                    query
                        .push(" AND EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id AND e.account_id = ")
                        .push_bind(account_id)
                        .push(")");
                }
                if let Some(from) = filter.from {
                    query.push(" AND t.created_at >= ").push_bind(from);
                }
                if let Some(to) = filter.to {
                    query.push(" AND t.created_at < ").push_bind(to);
                }
                if let Some(reference) = &filter.reference {
                    query.push(" AND t.reference = ").push_bind(reference.clone());
                }
                if let Some((created_at, after_id)) = filter.after {
                    query
                        .push(" AND (t.created_at > ")
                        .push_bind(created_at)
                        .push(" OR (t.created_at = ")
                        .push_bind(created_at)
                        .push(" AND t.id > ")
                        .push_bind(after_id)
                        .push("))");
                }
                query.push(" ORDER BY t.created_at, t.id");
                if id.is_none() {
                    query.push(" LIMIT ").push_bind(i64::from(filter.limit));
                }
                let rows: Vec<$crate::store::rows::TransactionRow> =
                    query.build_query_as().fetch_all(&self.pool).await?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }

                let mut entries_by_transaction: std::collections::HashMap<
                    uuid::Uuid,
                    Vec<$crate::domain::transaction::Entry>,
                > = std::collections::HashMap::new();
                for chunk in rows.chunks($crate::store::shared::CHUNK_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM entries WHERE transaction_id IN (",
                        $crate::store::rows::ENTRY_COLUMNS
                    ));
                    let mut list = query.separated(", ");
                    chunk.iter().for_each(|row| {
                        list.push_bind(row.id);
                    });
                    query.push(") ORDER BY posting_index, is_debit DESC");
                    let entries: Vec<$crate::store::rows::EntryRow> =
                        query.build_query_as().fetch_all(&self.pool).await?;
                    for entry in entries {
                        let entry: $crate::domain::transaction::Entry = entry.into();
                        entries_by_transaction
                            .entry(entry.transaction_id)
                            .or_default()
                            .push(entry);
                    }
                }
                Ok(rows
                    .into_iter()
                    .map(|row| $crate::store::StoredTransaction {
                        entries: entries_by_transaction.remove(&row.id).unwrap_or_default(),
                        id: row.id,
                        description: row.description,
                        reference: row.reference,
                        metadata: row.metadata,
                        effective_at: row.effective_at,
                        created_at: row.created_at,
                        reversal_of: row.reversal_of,
                        reversed_by: row.reversed_by,
                    })
                    .collect())
            }
        }
    };
}
