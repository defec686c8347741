//! Ledger transactions. A transaction is a list of postings; each posting moves one amount
//! from a debit account to a credit account, so a transaction balances by construction.
//! `apply` is the one place where postings change account totals.

use std::collections::HashMap;

use uuid::Uuid;

use super::account::{Account, AccountFlags, Balance, FlagViolation};
use super::money::{Amount, AmountError, Currency};

pub const MAX_POSTINGS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 512;
pub const MAX_REFERENCE_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub debit: Uuid,
    pub credit: Uuid,
    pub amount: Amount,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    #[error("debit and credit are the same account {0}")]
    SameAccount(String),
    #[error(
        "debit account is {debit} but credit account is {credit}; a posting moves one currency"
    )]
    CurrencyMismatch { debit: Currency, credit: Currency },
    #[error(transparent)]
    Amount(#[from] AmountError),
}

impl Posting {
    pub fn new(debit: &Account, credit: &Account, amount: &str) -> Result<Self, PostingError> {
        if debit.id == credit.id {
            return Err(PostingError::SameAccount(debit.code.clone()));
        }
        if debit.currency != credit.currency {
            return Err(PostingError::CurrencyMismatch {
                debit: debit.currency,
                credit: credit.currency,
            });
        }
        Ok(Self {
            debit: debit.id,
            credit: credit.id,
            amount: Amount::parse(amount, debit.currency)?,
            currency: debit.currency,
        })
    }

    /// The mirror posting that undoes this one.
    pub fn reversed(&self) -> Self {
        Self {
            debit: self.credit,
            credit: self.debit,
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("a transaction needs at least one posting")]
    NoPostings,
    #[error("a transaction may have at most {MAX_POSTINGS} postings (got {0})")]
    TooManyPostings(usize),
    #[error("description must be 1 to {MAX_DESCRIPTION_CHARS} characters")]
    InvalidDescription,
    #[error("reference must be 1 to {MAX_REFERENCE_CHARS} characters")]
    InvalidReference,
}

/// A transaction ready to post: accounts resolved, amounts parsed, limits checked.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub id: Uuid,
    /// The client chose the id, so it may collide with an existing transaction; generated ids
    /// (UUIDv7) cannot.
    pub id_from_client: bool,
    pub description: String,
    pub reference: Option<String>,
    /// Serialized JSON object, stored as given.
    pub metadata: Option<String>,
    pub effective_at: i64,
    pub created_at: i64,
    pub reversal_of: Option<Uuid>,
    pub postings: Vec<Posting>,
}

pub struct TransactionDraft {
    pub id: Uuid,
    pub id_from_client: bool,
    pub description: String,
    pub reference: Option<String>,
    pub metadata: Option<String>,
    pub effective_at: i64,
    pub created_at: i64,
    pub reversal_of: Option<Uuid>,
}

impl NewTransaction {
    pub fn new(draft: TransactionDraft, postings: Vec<Posting>) -> Result<Self, TransactionError> {
        if postings.is_empty() {
            return Err(TransactionError::NoPostings);
        }
        if postings.len() > MAX_POSTINGS {
            return Err(TransactionError::TooManyPostings(postings.len()));
        }
        let description_chars = draft.description.trim().chars().count();
        if description_chars == 0 || draft.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(TransactionError::InvalidDescription);
        }
        if let Some(reference) = &draft.reference {
            let chars = reference.chars().count();
            if chars == 0 || chars > MAX_REFERENCE_CHARS {
                return Err(TransactionError::InvalidReference);
            }
        }
        Ok(Self {
            id: draft.id,
            id_from_client: draft.id_from_client,
            description: draft.description,
            reference: draft.reference,
            metadata: draft.metadata,
            effective_at: draft.effective_at,
            created_at: draft.created_at,
            reversal_of: draft.reversal_of,
            postings,
        })
    }

    pub fn account_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.postings.iter().flat_map(|p| [p.debit, p.credit])
    }
}

/// One side of a posting as written to an account, with the account's totals after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub transaction_id: Uuid,
    pub posting_index: i32,
    pub account_id: Uuid,
    /// 1-based position in the account's history; also the pagination cursor.
    pub account_seq: i64,
    pub is_debit: bool,
    pub amount: i64,
    pub debits_after: i64,
    pub credits_after: i64,
    pub effective_at: i64,
    pub created_at: i64,
}

/// The state of an account while a write holds its lock.
#[derive(Debug, Clone, Copy)]
pub struct LockedAccount {
    pub flags: AccountFlags,
    pub balance: Balance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("account {account_id} would break its flag: {violation:?}")]
    FlagViolated {
        account_id: Uuid,
        violation: FlagViolation,
    },
    #[error("account {account_id} totals would overflow")]
    BalanceOverflow { account_id: Uuid },
}

/// Applies a transaction to locked account states. On error the states are left untouched,
/// so a batch can carry on with the next transaction.
pub fn apply(
    accounts: &mut HashMap<Uuid, LockedAccount>,
    transaction: &NewTransaction,
) -> Result<Vec<Entry>, ApplyError> {
    let touched: Vec<Uuid> = transaction.account_ids().collect();
    let saved: Vec<(Uuid, LockedAccount)> = touched.iter().map(|id| (*id, accounts[id])).collect();
    let result = apply_unchecked(accounts, transaction);
    if result.is_err() {
        accounts.extend(saved);
    }
    result
}

fn apply_unchecked(
    accounts: &mut HashMap<Uuid, LockedAccount>,
    transaction: &NewTransaction,
) -> Result<Vec<Entry>, ApplyError> {
    let mut entries = Vec::with_capacity(transaction.postings.len() * 2);
    for (index, posting) in transaction.postings.iter().enumerate() {
        for (account_id, is_debit) in [(posting.debit, true), (posting.credit, false)] {
            let state = accounts
                .get_mut(&account_id)
                .expect("every posted account is locked before apply");
            let overflow = ApplyError::BalanceOverflow { account_id };
            let balance = &mut state.balance;
            let total = if is_debit {
                &mut balance.debits_posted
            } else {
                &mut balance.credits_posted
            };
            *total = total.checked_add(posting.amount.minor()).ok_or(overflow)?;
            balance.entry_count += 1;
            entries.push(Entry {
                transaction_id: transaction.id,
                posting_index: index as i32,
                account_id,
                account_seq: balance.entry_count,
                is_debit,
                amount: posting.amount.minor(),
                debits_after: balance.debits_posted,
                credits_after: balance.credits_posted,
                effective_at: transaction.effective_at,
                created_at: transaction.created_at,
            });
        }
    }
    for account_id in transaction.account_ids() {
        let state = &accounts[&account_id];
        state
            .flags
            .check(state.balance.debits_posted, state.balance.credits_posted)
            .map_err(|violation| ApplyError::FlagViolated {
                account_id,
                violation,
            })?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(flags: AccountFlags, debits: i64, credits: i64) -> LockedAccount {
        LockedAccount {
            flags,
            balance: Balance {
                debits_posted: debits,
                credits_posted: credits,
                entry_count: 0,
            },
        }
    }

    fn transfer(debit: Uuid, credit: Uuid, amount: i64) -> NewTransaction {
        NewTransaction::new(
            TransactionDraft {
                id: Uuid::now_v7(),
                id_from_client: false,
                description: "test".into(),
                reference: None,
                metadata: None,
                effective_at: 0,
                created_at: 0,
                reversal_of: None,
            },
            vec![Posting {
                debit,
                credit,
                amount: Amount::from_minor(amount).unwrap(),
                currency: Currency::Vnd,
            }],
        )
        .unwrap()
    }

    #[test]
    fn apply_moves_totals_and_numbers_entries() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut accounts = HashMap::from([
            (a, locked(AccountFlags::default(), 0, 0)),
            (b, locked(AccountFlags::default(), 0, 0)),
        ]);
        let entries = apply(&mut accounts, &transfer(a, b, 40)).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(accounts[&a].balance.debits_posted, 40);
        assert_eq!(accounts[&b].balance.credits_posted, 40);
        assert_eq!(entries[0].account_seq, 1);
    }

    #[test]
    fn a_broken_flag_leaves_states_untouched() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let guarded = AccountFlags {
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
        };
        let mut accounts = HashMap::from([
            (a, locked(guarded, 0, 100)),
            (b, locked(AccountFlags::default(), 0, 0)),
        ]);
        apply(&mut accounts, &transfer(a, b, 100)).unwrap();
        let err = apply(&mut accounts, &transfer(a, b, 1)).unwrap_err();
        assert_eq!(
            err,
            ApplyError::FlagViolated {
                account_id: a,
                violation: FlagViolation::DebitsExceedCredits
            }
        );
        assert_eq!(accounts[&a].balance.debits_posted, 100);
        assert_eq!(accounts[&a].balance.entry_count, 1);
        assert_eq!(accounts[&b].balance.credits_posted, 100);
    }

    #[test]
    fn overflow_is_refused() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut accounts = HashMap::from([
            (a, locked(AccountFlags::default(), i64::MAX - 5, 0)),
            (b, locked(AccountFlags::default(), 0, 0)),
        ]);
        let err = apply(&mut accounts, &transfer(a, b, 10)).unwrap_err();
        assert_eq!(err, ApplyError::BalanceOverflow { account_id: a });
        assert_eq!(accounts[&a].balance.debits_posted, i64::MAX - 5);
    }

    #[test]
    fn transaction_limits() {
        let draft = || TransactionDraft {
            id: Uuid::now_v7(),
            id_from_client: false,
            description: "x".into(),
            reference: None,
            metadata: None,
            effective_at: 0,
            created_at: 0,
            reversal_of: None,
        };
        assert_eq!(
            NewTransaction::new(draft(), vec![]).unwrap_err(),
            TransactionError::NoPostings
        );
        let posting = transfer(Uuid::now_v7(), Uuid::now_v7(), 1).postings[0].clone();
        assert_eq!(
            NewTransaction::new(draft(), vec![posting; MAX_POSTINGS + 1]).unwrap_err(),
            TransactionError::TooManyPostings(MAX_POSTINGS + 1)
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNTS: usize = 4;

    fn id(index: usize) -> Uuid {
        Uuid::from_u128(index as u128 + 1)
    }

    prop_compose! {
        fn any_account()(
            debits_guard in any::<bool>(),
            credits_guard in any::<bool>(),
            debits in prop_oneof![0i64..1_000_000_000, Just(i64::MAX - 10)],
            credits in 0i64..1_000_000_000,
        ) -> LockedAccount {
            LockedAccount {
                // At most one guard, as accounts are created.
                flags: AccountFlags {
                    debits_must_not_exceed_credits: debits_guard,
                    credits_must_not_exceed_debits: credits_guard && !debits_guard,
                },
                balance: Balance { debits_posted: debits, credits_posted: credits, entry_count: 0 },
            }
        }
    }

    prop_compose! {
        fn any_transaction()(
            legs in proptest::collection::vec(
                (0..ACCOUNTS, 1..ACCOUNTS, 1i64..=2_000_000_000),
                1..4,
            ),
        ) -> NewTransaction {
            let postings = legs
                .into_iter()
                .map(|(debit, offset, amount)| Posting {
                    debit: id(debit),
                    credit: id((debit + offset) % ACCOUNTS),
                    amount: Amount::from_minor(amount).unwrap(),
                    currency: Currency::Vnd,
                })
                .collect();
            NewTransaction::new(
                TransactionDraft {
                    id: Uuid::from_u128(0xAB),
                    id_from_client: false,
                    description: "property".into(),
                    reference: None,
                    metadata: None,
                    effective_at: 0,
                    created_at: 0,
                    reversal_of: None,
                },
                postings,
            )
            .unwrap()
        }
    }

    fn totals(accounts: &HashMap<Uuid, LockedAccount>) -> (i128, i128) {
        accounts.values().fold((0, 0), |(d, c), a| {
            (
                d + i128::from(a.balance.debits_posted),
                c + i128::from(a.balance.credits_posted),
            )
        })
    }

    proptest! {
        /// Applying transactions one after another conserves money (every debit has its
        /// credit, in the entries and in the totals), keeps each account's flag, and a refused
        /// transaction changes nothing at all.
        #[test]
        fn money_is_conserved_and_a_rejection_changes_nothing(
            start in proptest::collection::vec(any_account(), ACCOUNTS),
            transactions in proptest::collection::vec(any_transaction(), 1..20),
        ) {
            let mut accounts: HashMap<Uuid, LockedAccount> =
                start.into_iter().enumerate().map(|(i, a)| (id(i), a)).collect();
            for transaction in &transactions {
                let before: Vec<(Uuid, AccountFlags, Balance)> = (0..ACCOUNTS)
                    .map(|i| (id(i), accounts[&id(i)].flags, accounts[&id(i)].balance))
                    .collect();
                let (debits_before, credits_before) = totals(&accounts);
                let moved: i128 = transaction
                    .postings
                    .iter()
                    .map(|p| i128::from(p.amount.minor()))
                    .sum();
                match apply(&mut accounts, transaction) {
                    Ok(entries) => {
                        prop_assert_eq!(entries.len(), transaction.postings.len() * 2);
                        let debited: i128 =
                            entries.iter().filter(|e| e.is_debit).map(|e| i128::from(e.amount)).sum();
                        let credited: i128 =
                            entries.iter().filter(|e| !e.is_debit).map(|e| i128::from(e.amount)).sum();
                        prop_assert_eq!(debited, moved);
                        prop_assert_eq!(credited, moved);
                        let (debits_after, credits_after) = totals(&accounts);
                        prop_assert_eq!(debits_after - debits_before, moved);
                        prop_assert_eq!(credits_after - credits_before, moved);
                        for entry in &entries {
                            let state = &accounts[&entry.account_id];
                            prop_assert!(entry.account_seq <= state.balance.entry_count);
                        }
                        for account_id in transaction.account_ids() {
                            let state = &accounts[&account_id];
                            prop_assert!(state
                                .flags
                                .check(state.balance.debits_posted, state.balance.credits_posted)
                                .is_ok());
                        }
                    }
                    Err(_) => {
                        for (account_id, flags, balance) in before {
                            prop_assert_eq!(accounts[&account_id].flags, flags);
                            prop_assert_eq!(accounts[&account_id].balance, balance);
                        }
                    }
                }
            }
        }
    }
}
