//! The ledger core in the database: users and login throttling, accounts, posting with
//! idempotency keys, reading transactions back, and the invariant check. The SQL is written
//! once, for any [`Backend`]: reads on its pool, writes in a [`UnitOfWork`]. Only the three
//! bulk statements of the posting path differ per backend (`insert_transactions`,
//! `lock_accounts`, `write_postings`): PostgreSQL binds whole arrays to one prepared statement,
//! SQLite has no arrays.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use uuid::Uuid;

use super::rows::{
    AccountMismatchRow, AccountRow, EntryRow, IdempotencyRow, TransactionRow, UserRow,
    ACCOUNT_COLUMNS, ENTRY_COLUMNS, TRANSACTION_COLUMNS, USER_COLUMNS,
};
use super::unit_of_work::{Backend, Conn, UnitOfWork};
use super::{
    AccountFilter, AccountWithBalance, IdempotencyClaim, Idempotent, PostRejection, PostResults,
    PostgresStore, Responder, SingleOutcome, SingleWrite, SqliteStore, Store, StoreError,
    StoreResult, StoredResponse, StoredTransaction, TransactionFilter, VerifyReport, Violation,
    WriteMode,
};
use crate::domain::account::{Account, Balance, NewAccount};
use crate::domain::transaction::{apply, Entry, LockedAccount, NewTransaction};
use crate::domain::user::User;

/// Rows per multi-row INSERT/UPDATE statement, well under both backends' bind limits.
pub(super) const CHUNK_ROWS: usize = 500;

/// A transaction to post, with who posts it.
type Item<'a> = (&'a NewTransaction, Uuid);

/// A unique violation means the value is taken; anything else is a database error.
pub(super) fn taken_or(error: sqlx::Error, taken: StoreError) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => taken,
        other => other.into(),
    }
}

#[async_trait]
impl<T: Backend + 'static> Store for T {
    fn backend(&self) -> &'static str {
        self.name()
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn backup(&self, path: &str) -> StoreResult<()> {
        self.backup_to(path).await
    }

    async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn find_user(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = pool_rows!(self, fetch_optional, &sql, username)?;
        row.map(|r| r.into_domain()).transpose()
    }

    async fn admin_exists(&self) -> StoreResult<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled)";
        let (exists,): (bool,) = pool_rows!(self, fetch_one, sql)?;
        Ok(exists)
    }

    async fn record_login_attempt(
        &self,
        username: &str,
        now: i64,
        window_micros: i64,
    ) -> StoreResult<(i64, i64)> {
        let sql = "INSERT INTO login_throttle (username, failures, window_started_at) \
                   VALUES ($1, 1, $2) \
                   ON CONFLICT (username) DO UPDATE SET \
                     failures = CASE WHEN login_throttle.window_started_at < $3 \
                       THEN 1 ELSE login_throttle.failures + 1 END, \
                     window_started_at = CASE WHEN login_throttle.window_started_at < $3 \
                       THEN $2 ELSE login_throttle.window_started_at END \
                   RETURNING CAST(failures AS BIGINT), window_started_at";
        let window_start = now - window_micros;
        Ok(pool_rows!(
            self,
            fetch_one,
            sql,
            username,
            now,
            window_start
        )?)
    }

    async fn clear_login_failures(&self, username: &str) -> StoreResult<()> {
        let sql = "DELETE FROM login_throttle WHERE username = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(username)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn create_account(
        &self,
        account: &NewAccount,
        id: Uuid,
        now: i64,
    ) -> StoreResult<Account> {
        let sql = "INSERT INTO accounts (id, code, name, kind, currency, \
                   debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(account.code.as_str())
            .bind(&account.name)
            .bind(account.kind.as_str())
            .bind(account.currency.code())
            .bind(account.flags.debits_must_not_exceed_credits)
            .bind(account.flags.credits_must_not_exceed_debits)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| taken_or(e, StoreError::AccountCodeTaken))?;
        Ok(Account {
            id,
            code: account.code.as_str().to_owned(),
            name: account.name.clone(),
            kind: account.kind,
            currency: account.currency,
            flags: account.flags,
            created_at: now,
        })
    }

    async fn find_accounts(&self, ids: &[Uuid], codes: &[String]) -> StoreResult<Vec<Account>> {
        let mut found: Vec<AccountRow> = Vec::new();
        for ids in ids.chunks(CHUNK_ROWS) {
            let rows: Vec<AccountRow> = on_pool!(self, |pool| {
                let mut query = sqlx::QueryBuilder::new(format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ("
                ));
                let mut list = query.separated(", ");
                ids.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(")");
                query.build_query_as().fetch_all(pool).await
            })?;
            found.extend(rows);
        }
        for codes in codes.chunks(CHUNK_ROWS) {
            let rows: Vec<AccountRow> = on_pool!(self, |pool| {
                let mut query = sqlx::QueryBuilder::new(format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE code IN ("
                ));
                let mut list = query.separated(", ");
                codes.iter().for_each(|code| {
                    list.push_bind(code.as_str());
                });
                query.push(")");
                query.build_query_as().fetch_all(pool).await
            })?;
            found.extend(rows);
        }
        found
            .into_iter()
            .map(|row| Ok(row.into_domain()?.0))
            .collect()
    }

    async fn account_with_balance(
        &self,
        id: Uuid,
        as_of: Option<i64>,
    ) -> StoreResult<Option<AccountWithBalance>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let row: Option<AccountRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        let Some(row) = row else { return Ok(None) };
        let (account, mut balance) = row.into_domain()?;
        if let Some(as_of) = as_of {
            let sql = "SELECT \
                   CAST(COALESCE(SUM(CASE WHEN is_debit THEN amount ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN is_debit THEN 0 ELSE amount END), 0) AS BIGINT), \
                   COUNT(*) \
                 FROM entries WHERE account_id = $1 AND effective_at <= $2";
            let (debits, credits, count): (i64, i64, i64) =
                pool_rows!(self, fetch_one, sql, id, as_of)?;
            balance = Balance {
                debits_posted: debits,
                credits_posted: credits,
                entry_count: count,
            };
        }
        Ok(Some(AccountWithBalance { account, balance }))
    }

    async fn list_accounts(&self, filter: &AccountFilter) -> StoreResult<Vec<AccountWithBalance>> {
        let rows: Vec<AccountRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE 1 = 1"
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
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|row| {
                let (account, balance) = row.into_domain()?;
                Ok(AccountWithBalance { account, balance })
            })
            .collect()
    }

    async fn list_entries(
        &self,
        account_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE account_id = $1 AND account_seq > $2 \
             ORDER BY account_seq LIMIT $3"
        );
        let limit = i64::from(limit);
        let rows: Vec<EntryRow> = pool_rows!(self, fetch_all, &sql, account_id, after_seq, limit)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn post_transactions(
        &self,
        created_by: Uuid,
        claim: Option<&IdempotencyClaim>,
        transactions: &[NewTransaction],
        mode: WriteMode,
        respond: Responder<'_>,
        now: i64,
    ) -> StoreResult<Idempotent<PostResults>> {
        let mut unit = self.begin_unit().await?;
        let all_or_nothing = mode == WriteMode::AllOrNothing;
        // All-or-nothing writes either commit every transaction or nothing, so their response
        // is known now and is stored with the key in one statement.
        let response_now = all_or_nothing.then(|| respond(&vec![Ok(()); transactions.len()]));
        if let Some(claim) = claim {
            if let Some(replay) = unit.claim_key(claim, response_now.as_ref(), now).await? {
                unit.rollback().await?;
                return replay.map(Idempotent::Replay);
            }
        }
        let items: Vec<Item> = transactions.iter().map(|t| (t, created_by)).collect();
        let mut results = unit.check_unique(&items).await?;
        if all_or_nothing && results.iter().any(Result::is_err) {
            unit.rollback().await?;
            return Ok(Idempotent::Fresh(results));
        }
        let written = unit
            .apply_and_write(&items, &mut results, all_or_nothing)
            .await?;
        if !written {
            unit.rollback().await?;
            return Ok(Idempotent::Fresh(results));
        }
        if let (Some(claim), None) = (claim, &response_now) {
            unit.store_key_response(claim, &respond(&results)).await?;
        }
        unit.commit().await?;
        Ok(Idempotent::Fresh(results))
    }

    async fn post_singles(&self, writes: &[SingleWrite<'_>]) -> StoreResult<Vec<SingleOutcome>> {
        let mut unit = self.begin_unit().await?;
        // Claimed in key order, so two flushes holding the same keys cannot deadlock.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        order.sort_by(|a, b| {
            let (a, b) = (writes[*a].claim, writes[*b].claim);
            (a.user_id, &a.key).cmp(&(b.user_id, &b.key))
        });
        let mut outcomes: Vec<Option<SingleOutcome>> = vec![None; writes.len()];
        for index in order {
            let write = &writes[index];
            let at = write.transaction.created_at;
            if let Some(earlier) = unit
                .claim_key(write.claim, Some(write.response), at)
                .await?
            {
                outcomes[index] = Some(match earlier {
                    Ok(stored) => SingleOutcome::Replay(stored),
                    Err(StoreError::IdempotencyKeyReused) => SingleOutcome::KeyReused,
                    Err(_) => SingleOutcome::KeyInProgress,
                });
            }
        }
        let claimed: Vec<usize> = (0..writes.len())
            .filter(|i| outcomes[*i].is_none())
            .collect();
        let items: Vec<Item> = claimed
            .iter()
            .map(|i| (writes[*i].transaction, writes[*i].created_by))
            .collect();
        let mut results = unit.check_unique(&items).await?;
        unit.apply_and_write(&items, &mut results, false).await?;
        for (index, result) in claimed.iter().zip(results) {
            outcomes[*index] = Some(match result {
                Ok(()) => {
                    if let Some(audit) = writes[*index].audit {
                        unit.append_audit(audit).await?;
                    }
                    SingleOutcome::Posted
                }
                Err(rejection) => {
                    // A refused request leaves no key behind: it may be corrected and sent
                    // again with the same key.
                    unit.release_key(writes[*index].claim).await?;
                    SingleOutcome::Rejected(rejection)
                }
            });
        }
        unit.commit().await?;
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every write has an outcome"))
            .collect())
    }

    async fn transaction(&self, id: Uuid) -> StoreResult<Option<StoredTransaction>> {
        let filter = TransactionFilter::default();
        let mut found = load_transactions(self, &filter, Some(id)).await?;
        Ok(found.pop())
    }

    async fn list_transactions(
        &self,
        filter: &TransactionFilter,
    ) -> StoreResult<Vec<StoredTransaction>> {
        load_transactions(self, filter, None).await
    }

    async fn verify(&self) -> StoreResult<VerifyReport> {
        let mut unit = self.begin_snapshot().await?;
        let mut violations = unit.transaction_violations().await?;
        let (transactions_checked, accounts_checked): (i64, i64) = tx_rows!(
            unit,
            fetch_one,
            "SELECT (SELECT COUNT(*) FROM transactions), (SELECT COUNT(*) FROM accounts)"
        )?;
        // The ledger's totals pass i64 long before any account's does, and SQLite's SUM fails
        // past i64 instead of widening: each amount is summed as its high and low 32 bits,
        // neither sum near i64 below two billion entries, and the halves joined in i128.
        let sql = "SELECT \
             CAST(COALESCE(SUM(CASE WHEN is_debit THEN amount / 4294967296 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN is_debit THEN amount % 4294967296 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN is_debit THEN NULL ELSE amount / 4294967296 END), 0) \
               AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN is_debit THEN NULL ELSE amount % 4294967296 END), 0) \
               AS BIGINT) \
           FROM entries";
        let (debits_high, debits_low, credits_high, credits_low): (i64, i64, i64, i64) =
            tx_rows!(unit, fetch_one, sql)?;
        let joined = |high: i64, low: i64| ((i128::from(high) << 32) + i128::from(low)).to_string();
        let total_debits = joined(debits_high, debits_low);
        let total_credits = joined(credits_high, credits_low);
        if total_debits != total_credits {
            violations.push(Violation {
                kind: "LEDGER_UNBALANCED",
                detail: format!(
                    "total debits {total_debits} differ from total credits {total_credits}"
                ),
            });
        }
        violations.extend(unit.account_violations().await?);
        unit.rollback().await?;
        Ok(VerifyReport {
            transactions_checked,
            accounts_checked,
            total_debits,
            total_credits,
            violations,
        })
    }

    async fn delete_idempotency_keys_before(&self, cutoff: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM idempotency_keys WHERE created_at < $1";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?)
    }

    async fn stored_response(
        &self,
        claim: &IdempotencyClaim,
    ) -> StoreResult<Option<StoreResult<StoredResponse>>> {
        let stored: Option<IdempotencyRow> =
            pool_rows!(self, fetch_optional, KEY_ROW_SQL, claim.user_id, &claim.key)?;
        Ok(stored.map(|row| answer_for(row, claim)))
    }
}

const KEY_ROW_SQL: &str = "SELECT request_hash, status_code, response_body FROM idempotency_keys \
                           WHERE user_id = $1 AND key = $2";

/// What a key's row means for a request that brings the same key: the same request gets the
/// stored response; another request, or one still running, cannot be answered from it.
fn answer_for(stored: IdempotencyRow, claim: &IdempotencyClaim) -> StoreResult<StoredResponse> {
    if stored.request_hash != claim.request_hash {
        return Err(StoreError::IdempotencyKeyReused);
    }
    match (stored.status_code, stored.response_body) {
        (Some(status), Some(body)) => Ok(StoredResponse {
            status: status as u16,
            body,
        }),
        _ => Err(StoreError::IdempotencyKeyInProgress),
    }
}

/// Loads one transaction by id, or a filtered page, each with its entries.
async fn load_transactions<T: Backend>(
    store: &T,
    filter: &TransactionFilter,
    id: Option<Uuid>,
) -> StoreResult<Vec<StoredTransaction>> {
    let rows: Vec<TransactionRow> = on_pool!(store, |pool| {
        let mut query = sqlx::QueryBuilder::new(format!(
            "SELECT {TRANSACTION_COLUMNS} FROM transactions t WHERE 1 = 1"
        ));
        if let Some(id) = id {
            query.push(" AND t.id = ").push_bind(id);
        }
        if let Some(account_id) = filter.account_id {
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id \
                     AND e.account_id = ",
                )
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
            query
                .push(" AND t.reference = ")
                .push_bind(reference.clone());
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
        query.build_query_as().fetch_all(pool).await
    })?;
    let mut entries = entries_of(store, &rows).await?;
    Ok(rows
        .into_iter()
        .map(|row| StoredTransaction {
            entries: entries.remove(&row.id).unwrap_or_default(),
            id: row.id,
            description: row.description,
            reference: row.reference,
            metadata: row.metadata,
            effective_at: row.effective_at,
            created_at: row.created_at,
            created_by: row.created_by,
            reversal_of: row.reversal_of,
            reversed_by: row.reversed_by,
        })
        .collect())
}

/// The entries of these transactions, by transaction, in posting order.
async fn entries_of<T: Backend>(
    store: &T,
    transactions: &[TransactionRow],
) -> StoreResult<HashMap<Uuid, Vec<Entry>>> {
    let mut by_transaction: HashMap<Uuid, Vec<Entry>> = HashMap::new();
    for chunk in transactions.chunks(CHUNK_ROWS) {
        let rows: Vec<EntryRow> = on_pool!(store, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE transaction_id IN ("
            ));
            let mut list = query.separated(", ");
            chunk.iter().for_each(|row| {
                list.push_bind(row.id);
            });
            query.push(") ORDER BY posting_index, is_debit DESC");
            query.build_query_as().fetch_all(pool).await
        })?;
        for entry in rows {
            let entry: Entry = entry.into();
            by_transaction
                .entry(entry.transaction_id)
                .or_default()
                .push(entry);
        }
    }
    Ok(by_transaction)
}

/// The ledger reads and writes of a use case's database transaction.
impl UnitOfWork<'_> {
    /// Claims an idempotency key at `now`. `None`: the key is new and now held by this
    /// transaction. `Some`: an earlier request holds it: its stored response, or why it cannot
    /// be replayed.
    pub async fn claim_key(
        &mut self,
        claim: &IdempotencyClaim,
        response: Option<&StoredResponse>,
        now: i64,
    ) -> StoreResult<Option<StoreResult<StoredResponse>>> {
        // The key row can vanish between the two statements (the hourly cleanup of old keys),
        // so a miss on the read tries the insert again.
        let stored = loop {
            // On PostgreSQL this waits for a concurrent holder of the same key to finish, so a
            // duplicate sees its committed response instead of racing it.
            let sql = "INSERT INTO idempotency_keys \
                       (user_id, key, request_hash, status_code, response_body, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING";
            let inserted = on_tx!(self, |tx| sqlx::query(sql)
                .bind(claim.user_id)
                .bind(&claim.key)
                .bind(&claim.request_hash)
                .bind(response.map(|r| i32::from(r.status)))
                .bind(response.map(|r| r.body.as_str()))
                .bind(now)
                .execute(&mut **tx)
                .await
                .map(|done| done.rows_affected()))?;
            if inserted == 1 {
                return Ok(None);
            }
            let stored: Option<IdempotencyRow> =
                tx_rows!(self, fetch_optional, KEY_ROW_SQL, claim.user_id, &claim.key)?;
            if let Some(stored) = stored {
                break stored;
            }
        };
        Ok(Some(answer_for(stored, claim)))
    }

    /// Completes a key claimed without a response (`claim_key(.., None, ..)`) with the
    /// response its request produced.
    pub async fn store_key_response(
        &mut self,
        claim: &IdempotencyClaim,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let sql = "UPDATE idempotency_keys SET status_code = $1, response_body = $2 \
                   WHERE user_id = $3 AND key = $4";
        let status = i32::from(response.status);
        execute!(self, sql, status, &response.body, claim.user_id, &claim.key)?;
        Ok(())
    }

    /// Lets go of a claimed key: the request it held was refused.
    async fn release_key(&mut self, claim: &IdempotencyClaim) -> StoreResult<()> {
        let sql = "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2";
        execute!(self, sql, claim.user_id, &claim.key)?;
        Ok(())
    }

    /// Refuses transactions whose id is taken or whose original is already reversed, in the
    /// database or earlier in the same list. Generated ids cannot collide and a new
    /// transaction reverses nothing, so the common case skips the read; a concurrent write of
    /// the same id or reversal hits the unique constraints instead, and the retry lands here.
    async fn check_unique(&mut self, items: &[Item<'_>]) -> StoreResult<PostResults> {
        let mut taken_ids: HashSet<Uuid> = HashSet::new();
        let mut reversed: HashSet<Uuid> = HashSet::new();
        let to_check: Vec<&NewTransaction> = items
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| t.id_from_client || t.reversal_of.is_some())
            .collect();
        for chunk in to_check.chunks(CHUNK_ROWS) {
            let rows: Vec<(Uuid, Option<Uuid>)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
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
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
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
                } else if let Some(original) = transaction
                    .reversal_of
                    .filter(|original| !reversed.insert(*original))
                {
                    Err(PostRejection::AlreadyReversed(original))
                } else {
                    Ok(())
                }
            })
            .collect())
    }

    /// Locks the accounts of the transactions still accepted in `results`, applies them in
    /// order (a refused one leaves no trace and is marked in `results`), then writes balances,
    /// entries and the accepted transaction rows. When `all_or_nothing`, any refusal writes
    /// nothing: returns false, for the caller to roll back.
    ///
    /// Transaction rows are inserted only here, behind the account gate and locks: a writer
    /// waiting on another's uncommitted transaction id (a unique conflict) while holding a gate
    /// the other needs would be a deadlock the database cannot see.
    pub(super) async fn apply_and_write(
        &mut self,
        items: &[Item<'_>],
        results: &mut [Result<(), PostRejection>],
        all_or_nothing: bool,
    ) -> StoreResult<bool> {
        // Locked in id order, so concurrent writers never wait on each other in a cycle.
        let account_ids: Vec<Uuid> = items
            .iter()
            .zip(results.iter())
            .filter(|(_, result)| result.is_ok())
            .flat_map(|((t, _), _)| t.account_ids())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (_account_gates, mut accounts) = self.gate_and_lock(&account_ids, true).await?;
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
        self.write_applied(&account_ids, &accounts, &accepted, &entries)
            .await?;
        Ok(true)
    }

    /// Queues at the account gate (when `gated`), then locks the accounts (ids in order);
    /// every one must exist. The gates are held for as long as the caller keeps them.
    pub(super) async fn gate_and_lock(
        &mut self,
        account_ids: &[Uuid],
        gated: bool,
    ) -> StoreResult<(
        Vec<tokio::sync::OwnedMutexGuard<()>>,
        HashMap<Uuid, LockedAccount>,
    )> {
        let gates = if gated {
            self.gate_accounts(account_ids).await
        } else {
            Vec::new()
        };
        let accounts = self.lock_accounts(account_ids).await?;
        if accounts.len() != account_ids.len() {
            return Err(StoreError::Corrupt(
                "an account of a posting does not exist".into(),
            ));
        }
        Ok((gates, accounts))
    }

    /// Waits at the backend's in-process gate for these accounts (PostgreSQL; SQLite's write
    /// gate already admits one writer at a time).
    pub(super) async fn gate_accounts(
        &self,
        ids: &[Uuid],
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        match &self.conn {
            Conn::Sqlite(store, _) => store.gate_accounts(ids).await,
            Conn::Postgres(store, _) => store.gate_accounts(ids).await,
        }
    }

    /// The accounts' states, locked until commit.
    pub(super) async fn lock_accounts(
        &mut self,
        ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, LockedAccount>> {
        match &mut self.conn {
            Conn::Sqlite(_, tx) => SqliteStore::lock_accounts(tx, ids).await,
            Conn::Postgres(_, tx) => PostgresStore::lock_accounts(tx, ids).await,
        }
    }

    /// Writes applied transactions: their rows, the entries, and the new totals of the
    /// accounts they touched (of `account_ids`, the locked ones, in lock order).
    pub(super) async fn write_applied(
        &mut self,
        account_ids: &[Uuid],
        accounts: &HashMap<Uuid, LockedAccount>,
        accepted: &[Item<'_>],
        entries: &[Entry],
    ) -> StoreResult<()> {
        let touched_ids: HashSet<Uuid> = entries.iter().map(|e| e.account_id).collect();
        let touched: Vec<(Uuid, LockedAccount)> = account_ids
            .iter()
            .filter(|id| touched_ids.contains(id))
            .map(|id| (*id, accounts[id]))
            .collect();
        match &mut self.conn {
            Conn::Sqlite(_, tx) => {
                SqliteStore::insert_transactions(tx, accepted).await?;
                SqliteStore::write_postings(tx, &touched, entries).await
            }
            Conn::Postgres(_, tx) => {
                PostgresStore::insert_transactions(tx, accepted).await?;
                PostgresStore::write_postings(tx, &touched, entries).await
            }
        }
    }

    /// Transactions whose entries do not balance, or that have none.
    async fn transaction_violations(&mut self) -> StoreResult<Vec<Violation>> {
        let sql = "SELECT transaction_id FROM entries GROUP BY transaction_id \
                   HAVING SUM(CASE WHEN is_debit THEN amount ELSE -amount END) <> 0 \
                      OR COUNT(*) < 2";
        let unbalanced: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql)?;
        let sql = "SELECT t.id FROM transactions t \
                   WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id)";
        let empty: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql)?;
        Ok(unbalanced
            .into_iter()
            .map(|(id,)| Violation {
                kind: "TRANSACTION_UNBALANCED",
                detail: format!("transaction {id}: debits and credits differ"),
            })
            .chain(empty.into_iter().map(|(id,)| Violation {
                kind: "TRANSACTION_WITHOUT_ENTRIES",
                detail: format!("transaction {id} has no entries"),
            }))
            .collect())
    }

    /// Accounts whose stored totals, entries' running totals or flags disagree.
    async fn account_violations(&mut self) -> StoreResult<Vec<Violation>> {
        let mut violations = self.account_total_violations().await?;
        // Each entry's running totals are what the balance history (`as_of`, the entries list)
        // shows, so they must add up entry by entry, not just in sum.
        let sql = "SELECT a.code, CAST(r.account_seq AS BIGINT) FROM ( \
                     SELECT account_id, account_seq, debits_after, credits_after, \
                       SUM(CASE WHEN is_debit THEN amount ELSE 0 END) \
                         OVER (PARTITION BY account_id ORDER BY account_seq) AS debits, \
                       SUM(CASE WHEN is_debit THEN 0 ELSE amount END) \
                         OVER (PARTITION BY account_id ORDER BY account_seq) AS credits \
                     FROM entries) r JOIN accounts a ON a.id = r.account_id \
                   WHERE r.debits_after <> r.debits OR r.credits_after <> r.credits \
                   ORDER BY a.code, r.account_seq";
        let miscounted: Vec<(String, i64)> = tx_rows!(self, fetch_all, sql)?;
        violations.extend(miscounted.into_iter().map(|(code, seq)| Violation {
            kind: "ENTRY_RUNNING_TOTAL_WRONG",
            detail: format!(
                "account {code}: entry {seq} does not carry the running totals of the entries \
                 before it"
            ),
        }));
        let sql = "SELECT code FROM accounts WHERE \
                     (debits_must_not_exceed_credits AND debits_posted > credits_posted) \
                     OR (credits_must_not_exceed_debits AND credits_posted > debits_posted)";
        let broken: Vec<(String,)> = tx_rows!(self, fetch_all, sql)?;
        violations.extend(broken.into_iter().map(|(code,)| Violation {
            kind: "ACCOUNT_FLAG_BROKEN",
            detail: format!("account {code} breaks its balance flag"),
        }));
        // A flag holds after every transaction, as posting checks it on the transaction's net
        // effect: the last entry each transaction wrote on a guarded account carries totals
        // within the flag. Entries before it, in the same transaction, may pass outside.
        // CASE, not AND: SQLite evaluated the NOT EXISTS first, for every entry, walking all
        // the later entries of the account each time (minutes on a busy account's 40,000
        // entries in bench/schools.sh; 55 ms this way).
        let sql = "SELECT a.code, CAST(e.account_seq AS BIGINT) FROM entries e \
                   JOIN accounts a ON a.id = e.account_id \
                   WHERE CASE WHEN (a.debits_must_not_exceed_credits \
                         AND e.debits_after > e.credits_after) \
                       OR (a.credits_must_not_exceed_debits AND e.credits_after > e.debits_after) \
                     THEN NOT EXISTS (SELECT 1 FROM entries later \
                       WHERE later.account_id = e.account_id \
                         AND later.transaction_id = e.transaction_id \
                         AND later.account_seq > e.account_seq) \
                     ELSE FALSE END \
                   ORDER BY a.code, e.account_seq";
        let broken_after: Vec<(String, i64)> = tx_rows!(self, fetch_all, sql)?;
        violations.extend(broken_after.into_iter().map(|(code, seq)| Violation {
            kind: "ENTRY_FLAG_BROKEN",
            detail: format!(
                "account {code}: after entry {seq}, the last of its transaction, the totals \
                 break the account's balance flag"
            ),
        }));
        Ok(violations)
    }

    /// Accounts whose stored totals differ from the sum of their entries.
    async fn account_total_violations(&mut self) -> StoreResult<Vec<Violation>> {
        let sql = "SELECT a.code, a.debits_posted, a.credits_posted, a.entry_count, \
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
                      OR a.entry_count <> COALESCE(e.last_seq, 0)";
        let mismatched: Vec<AccountMismatchRow> = tx_rows!(self, fetch_all, sql)?;
        Ok(mismatched
            .into_iter()
            .map(|m| Violation {
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
            })
            .collect())
    }
}
