//! Bank-feed use cases: configuring feeds, receiving webhooks (verify, parse, record, match,
//! post, notify), and staff reconciliation of money in suspense.

mod batch;
pub mod error;
mod feed_cache;
mod group;
pub mod models;
mod record;
pub mod secrets;
pub mod statement;

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use crate::clock::{to_rfc3339, Clock};
use crate::domain::audit::AuditAction;
use crate::domain::bank_feed::resolution::ResolutionAction;
use crate::domain::bank_feed::test_delivery::TestDelivery;
use crate::domain::bank_feed::{self, Direction, ParseError, Provider, Secret, VerifyError};
use crate::domain::payer::Pepper;
use crate::domain::sealing::SealingKeys;
use crate::domain::user::Role;
use crate::services::auth::Caller;
use crate::services::events::{PaymentEvents, PaymentReceived};
use crate::services::ledger::Reply;
use crate::services::{paging, PublicError};
use crate::store::bank_feed::{DeliveryRecord, Feed, StoredBankTransaction};
use crate::store::{IdempotencyClaim, Idempotent, Store, StoredResponse};
pub use error::BankFeedError;
use feed_cache::FeedCache;
pub use feed_cache::FEED_CACHE_LIFETIME;
use group::Deliveries;
use models::*;
use record::{Arrival, Recorder};
pub use record::{IngestOutcome, ResolutionResponder};

/// The largest webhook body accepted; real ones are a few hundred bytes (a Casso batch a few
/// KiB).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;
pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Clone)]
pub struct BankFeedService {
    store: Arc<dyn Store>,
    events: PaymentEvents,
    clock: Clock,
    /// Records bank transactions (and keys their payer-account hashes).
    recorder: Recorder,
    /// The group-commit writer of webhook deliveries.
    deliveries: Deliveries,
    /// Seal and open the feed secrets.
    sealing: SealingKeys,
    feeds: Arc<FeedCache>,
}

impl BankFeedService {
    /// Must be called within a Tokio runtime: it starts the group-commit writer of deliveries.
    pub fn new(
        store: Arc<dyn Store>,
        events: PaymentEvents,
        clock: Clock,
        sealing: SealingKeys,
    ) -> Self {
        let recorder = Recorder {
            store: store.clone(),
            clock: clock.clone(),
            // Replaced by the configured one at start-up (`with_pepper`).
            pepper: Pepper::new(&format!("{:032x}", rand::random::<u128>()))
                .expect("32 characters"),
        };
        Self {
            store,
            events,
            clock,
            deliveries: group::start(recorder.clone()),
            recorder,
            sealing,
            feeds: Arc::default(),
        }
    }

    /// Uses `pepper` for payer-account hashes.
    pub fn with_pepper(mut self, pepper: Pepper) -> Self {
        self.recorder.pepper = pepper;
        // The writer started by `new` stops when its queue, replaced here, is dropped.
        self.deliveries = group::start(self.recorder.clone());
        self
    }

    /// The provider's feeds with their secrets opened; read again at most every
    /// [`FEED_CACHE_LIFETIME`], or at once after a change on this instance.
    async fn feeds(&self, provider: Provider) -> Result<Arc<[Feed]>, BankFeedError> {
        let generation = match self.feeds.get(provider) {
            Ok(feeds) => return Ok(feeds),
            Err(generation) => generation,
        };
        let feeds: Arc<[Feed]> =
            secrets::opened(&self.sealing, self.store.feeds(provider).await?).into();
        self.feeds.put(provider, generation, feeds.clone());
        Ok(feeds)
    }

    pub async fn collection_accounts(&self) -> Result<CollectionAccountList, BankFeedError> {
        let accounts = self.store.list_collection_accounts().await?;
        Ok(CollectionAccountList {
            data: accounts.into_iter().map(Into::into).collect(),
        })
    }

    #[instrument(skip(self, request), fields(provider = %request.provider))]
    pub async fn set_feed(
        &self,
        caller: &Caller,
        id: Uuid,
        request: FeedRequest,
    ) -> Result<CollectionAccountView, BankFeedError> {
        let provider =
            Provider::parse(&request.provider).map_err(BankFeedError::InvalidProvider)?;
        if !(1..=2).contains(&request.secrets.len()) {
            return Err(BankFeedError::SecretCount);
        }
        let secrets: Vec<String> = request
            .secrets
            .iter()
            .map(|s| Secret::new(provider, s).map(|_| s.trim().to_owned()))
            .collect::<Result<_, _>>()?;
        let sealed = secrets::seal(&self.sealing, id, &secrets);
        // The secrets themselves never go into the trail, only how many there are.
        let audit = crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::FeedSet,
            id,
            None,
            Some(serde_json::json!({ "provider": provider.as_str(), "secrets": secrets.len() })),
        );
        let changed = self.store.set_feed(id, provider, &sealed, audit).await?;
        self.feeds.clear();
        if !changed {
            return Err(BankFeedError::CollectionAccountNotFound(id));
        }
        tracing::info!(collection_account = %id, "bank feed configured");
        self.store
            .list_collection_accounts()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .map(Into::into)
            .ok_or(BankFeedError::CollectionAccountNotFound(id))
    }

    /// Builds the delivery the account's feed provider would send for an incoming transfer,
    /// signed with the configured secret, and hands it to [`Self::receive`] like any other:
    /// the "send test webhook" button of the gateways, except that the transfer is posted as
    /// real. The stored delivery names who sent it (`X-Market-Ledger-Test-Delivery`).
    #[instrument(skip(self, caller, request), fields(user = %caller.username))]
    pub async fn send_test_delivery(
        &self,
        caller: &Caller,
        collection_account_id: Uuid,
        request: SendDeliveryRequest,
    ) -> Result<SentDeliveryView, BankFeedError> {
        let delivery = self
            .sign_test_delivery(caller, collection_account_id, request)
            .await?;
        let answer = self
            .receive(delivery.provider, &delivery.headers, &delivery.body)
            .await?;
        Ok(SentDeliveryView::new(delivery, answer))
    }

    /// The signed delivery of [`Self::send_test_delivery`], not yet sent: the command line
    /// posts it over HTTP to check the whole way in (reverse proxy included).
    pub async fn sign_test_delivery(
        &self,
        caller: &Caller,
        collection_account_id: Uuid,
        request: SendDeliveryRequest,
    ) -> Result<bank_feed::sign::Delivery, BankFeedError> {
        let amount = crate::domain::money::Amount::parse(
            &request.amount.0,
            crate::domain::money::Currency::Vnd,
        )?
        .minor();
        let memo = request.memo.trim();
        if memo.is_empty() || memo.chars().count() > 200 || memo.chars().any(char::is_control) {
            return Err(BankFeedError::InvalidMemo);
        }
        let known = self
            .store
            .list_collection_accounts()
            .await?
            .iter()
            .any(|a| a.id == collection_account_id);
        if !known {
            return Err(BankFeedError::CollectionAccountNotFound(
                collection_account_id,
            ));
        }
        let mut configured = None;
        for provider in Provider::ALL {
            let feeds = self.feeds(provider).await?;
            if let Some(feed) = feeds
                .iter()
                .find(|f| f.collection_account_id == collection_account_id)
            {
                configured = Some(feed.clone());
                break;
            }
        }
        let feed = configured.ok_or(BankFeedError::FeedNotConfigured(collection_account_id))?;
        let secret = Secret::new(
            feed.provider,
            feed.secrets.values.first().map_or("", String::as_str),
        )?;
        let now = self.clock.now();
        let transfer = bank_feed::sign::Transfer {
            // Unique per provider, like an aggregator's own transaction id.
            id: (self.clock.new_id().as_u128() & u128::from(u64::MAX >> 11)) as u64,
            account_number: feed.account_number.clone(),
            amount,
            memo: memo.to_owned(),
            booked_at: crate::domain::statistics::period::vietnam_local(now),
            payer: None,
        };
        let mut delivery =
            bank_feed::sign::delivery(feed.provider, &secret, &transfer, now.timestamp_millis());
        delivery.headers.push((
            "X-Market-Ledger-Test-Delivery".to_owned(),
            caller.username.clone(),
        ));
        Ok(delivery)
    }

    /// One webhook delivery, from the exact bytes received. Nothing is stored unless the
    /// signature verifies with a secret of some account on this provider; the body is parsed
    /// only after that, and must name an account that secret belongs to.
    #[instrument(skip(self, headers, body), fields(bytes = body.len()))]
    pub async fn receive(
        &self,
        provider: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookAck, BankFeedError> {
        let provider = Provider::parse(provider)?;
        let now = self.clock.now();
        let feeds = self.feeds(provider).await?;
        let verified = verified_feeds(provider, &feeds, headers, body, now)?;

        let mut delivery = DeliveryRecord {
            id: self.clock.new_id(),
            provider,
            collection_account_id: None,
            received_at: now.timestamp_micros(),
            headers: crate::store::bank_feed::redacted_headers(
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            body: body.to_vec(),
            provider_transaction_ids: String::new(),
            outcome: "accepted".to_owned(),
        };
        if let Some(test) = bank_feed::test_delivery::recognise(provider, body) {
            // A provider's signed sample (URL confirmation, "send test"): answered 2xx so the
            // provider accepts the URL, kept for staff, and never posted, whichever account it
            // names.
            delivery.outcome = TestDelivery::OUTCOME.to_owned();
            delivery.provider_transaction_ids = test.sample_id.clone();
            if let [feed] = verified.as_slice() {
                delivery.collection_account_id = Some(feed.collection_account_id);
            }
            self.store.record_delivery(&delivery).await?;
            metrics::counter!("webhook_test_deliveries_total", "provider" => provider.as_str())
                .increment(1);
            tracing::info!(delivery = %delivery.id, sample = %test.sample_id,
                "provider test delivery acknowledged, nothing posted");
            return Ok(WebhookAck {
                success: true,
                transactions: Vec::new(),
                ignored: Some(test.to_string()),
            });
        }
        let transactions = match bank_feed::parse(provider, body) {
            Ok(transactions) => transactions,
            Err(
                ignored @ (ParseError::ProviderReportedError { .. }
                | ParseError::UnsupportedEventType { .. }),
            ) => {
                // Verified, but not a bank transaction (a provider's test ping, another event
                // type): acknowledged so the provider stops retrying, and kept for the audit.
                delivery.outcome = ignored.code().to_owned();
                self.store.record_delivery(&delivery).await?;
                return Ok(WebhookAck {
                    success: true,
                    transactions: Vec::new(),
                    ignored: Some(ignored.to_string()),
                });
            }
            Err(refused) => {
                delivery.outcome = refused.code().to_owned();
                self.store.record_delivery(&delivery).await?;
                return Err(refused.into());
            }
        };
        delivery.provider_transaction_ids = transactions
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect::<Vec<_>>()
            .join(",");

        // Every transaction must belong to an account the signing secret is configured for,
        // before any is recorded.
        let mut targets = Vec::with_capacity(transactions.len());
        for transaction in &transactions {
            let account_number = transaction.account_number.trim();
            let mut signed_for = verified
                .iter()
                .filter(|f| f.account_number == account_number);
            match (signed_for.next(), signed_for.next()) {
                (Some(_), Some(_)) => {
                    // The bodies name no bank, so one secret on the same number at two banks
                    // cannot say which account the money reached.
                    let error = BankFeedError::AccountAmbiguous(account_number.to_owned());
                    delivery.outcome = error.code().to_owned();
                    self.store.record_delivery(&delivery).await?;
                    return Err(error);
                }
                (Some(feed), None) => targets.push(*feed),
                (None, _) if feeds.iter().any(|f| f.account_number == account_number) => {
                    return Err(BankFeedError::SignedForAnotherAccount(
                        account_number.to_owned(),
                    ))
                }
                (None, _) => {
                    let error = BankFeedError::AccountUnknown(account_number.to_owned());
                    if !self.store.account_number_known(account_number).await? {
                        delivery.outcome = error.code().to_owned();
                        self.store.record_delivery(&delivery).await?;
                        return Err(error);
                    }
                    // Registered, but its feed is set up for another provider or secret.
                    return Err(BankFeedError::SignedForAnotherAccount(
                        account_number.to_owned(),
                    ));
                }
            }
        }
        delivery.collection_account_id = targets.first().map(|f| f.collection_account_id);

        let delivery = Arc::new(delivery);
        let mut acknowledged = Vec::with_capacity(transactions.len());
        for (index, (transaction, feed)) in transactions.into_iter().zip(targets).enumerate() {
            let arrival = Arrival {
                delivery: delivery.clone(),
                insert_delivery: index == 0,
                feed: feed.clone(),
                bank: transaction,
            };
            // Recorded in a group with the deliveries arriving meanwhile; each transaction of
            // this delivery waits for the one before, as it would in its own transaction.
            let outcome = self.deliveries.write(arrival).await.map_err(|stopped| {
                BankFeedError::Store(crate::store::StoreError::Corrupt(stopped.to_string()))
            })??;
            self.after_ingest(&outcome).await;
            acknowledged.push(WebhookAckItem {
                id: outcome.transaction.id,
                provider_transaction_id: outcome.transaction.provider_transaction_id.clone(),
                matched_as: outcome.transaction.matched_as.as_str().to_owned(),
                duplicate: outcome.duplicate,
            });
        }
        Ok(WebhookAck {
            success: true,
            transactions: acknowledged,
            ignored: None,
        })
    }

    /// Counts and announces what a committed bank transaction did.
    async fn after_ingest(&self, outcome: &IngestOutcome) {
        let transaction = &outcome.transaction;
        let result = if outcome.duplicate {
            "duplicate"
        } else {
            transaction.matched_as.as_str()
        };
        metrics::counter!("bank_transactions_total", "provider" => transaction.provider.as_str(),
            "result" => result)
        .increment(1);
        if outcome.duplicate {
            tracing::info!(bank_transaction = %transaction.id, "duplicate delivery ignored");
            return;
        }
        // Every recorded bank transaction posted exactly one ledger transaction.
        metrics::counter!("ledger_transactions_posted_total", "source" => "bank_feed").increment(1);
        tracing::info!(bank_transaction = %transaction.id, matched_as = transaction.matched_as.as_str(),
            amount = transaction.amount, "bank transaction recorded");
        if let Some(credit) = &outcome.credit {
            self.events
                .publish(PaymentReceived {
                    payee_id: credit.payee_id,
                    bank_transaction_id: transaction.id,
                    payment_intent_id: credit.intent.as_ref().map(|(id, _, _)| *id),
                    reference: credit.intent.as_ref().map(|(_, r, _)| r.clone()),
                    amount: credit.amount.to_string(),
                    status: credit
                        .intent
                        .as_ref()
                        .map(|(_, _, status)| status.as_str().to_owned()),
                    occurred_at: to_rfc3339(transaction.occurred_at),
                })
                .await;
        }
    }

    /// Money staff moved out of suspense to a payee reaches its phone like any payment.
    async fn announce_resolution(
        &self,
        resolved: &StoredBankTransaction,
        action: ResolutionAction,
    ) -> Result<(), BankFeedError> {
        let (payee_id, intent) = match action {
            _ if resolved.direction != Direction::In => return Ok(()),
            ResolutionAction::Refund | ResolutionAction::Duplicate(_) => return Ok(()),
            ResolutionAction::Payee(payee) => (payee, None),
            ResolutionAction::Intent(intent) => match self.store.intent(intent).await? {
                Some(intent) => (intent.payee_id, Some(intent)),
                None => return Ok(()),
            },
        };
        self.events
            .publish(PaymentReceived {
                payee_id,
                bank_transaction_id: resolved.id,
                payment_intent_id: intent.as_ref().map(|i| i.id),
                reference: intent.as_ref().map(|i| i.reference.clone()),
                amount: resolved.suspense_amount.to_string(),
                status: intent
                    .as_ref()
                    .map(|i| i.status(self.clock.now_micros()).as_str().to_owned()),
                occurred_at: to_rfc3339(resolved.occurred_at),
            })
            .await;
        Ok(())
    }

    pub async fn bank_transaction(&self, id: Uuid) -> Result<BankTransactionView, BankFeedError> {
        self.store
            .bank_transaction(id)
            .await?
            .map(|t| BankTransactionView::from(&t))
            .ok_or(BankFeedError::BankTransactionNotFound(id))
    }

    pub async fn unmatched(&self, query: PageQuery) -> Result<BankTransactionPage, BankFeedError> {
        let limit = paging::limit(query.limit)?;
        let after = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        let rows = self.store.list_unmatched(after, limit).await?;
        Ok(BankTransactionPage {
            next_cursor: paging::next_cursor(&rows, limit, |t| {
                paging::time_and_id_key(t.created_at, t.id)
            }),
            data: rows.iter().map(BankTransactionView::from).collect(),
        })
    }

    /// Provider test deliveries (URL confirmations, "send test" buttons), oldest first.
    pub async fn test_deliveries(
        &self,
        query: PageQuery,
    ) -> Result<TestDeliveryPage, BankFeedError> {
        let limit = paging::limit(query.limit)?;
        let after = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        let rows = self
            .store
            .list_deliveries(TestDelivery::OUTCOME, after, limit)
            .await?;
        Ok(TestDeliveryPage {
            next_cursor: paging::next_cursor(&rows, limit, |d| {
                paging::time_and_id_key(d.received_at, d.id)
            }),
            data: rows.iter().map(TestDeliveryView::from).collect(),
        })
    }

    pub async fn discrepancies(&self, query: PageQuery) -> Result<DiscrepancyPage, BankFeedError> {
        let limit = paging::limit(query.limit)?;
        let after = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        let rows = self.store.list_discrepancies(after, limit).await?;
        Ok(DiscrepancyPage {
            next_cursor: paging::next_cursor(&rows, limit, |d| {
                paging::time_and_id_key(d.created_at, d.id)
            }),
            data: rows.iter().map(DiscrepancyView::from).collect(),
        })
    }

    /// Moves money out of suspense as staff decide, once, with who, when and why.
    #[instrument(skip(self, caller, claim, request), fields(user = %caller.username))]
    pub async fn resolve(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        id: Uuid,
        request: ResolveRequest,
    ) -> Result<Reply, BankFeedError> {
        debug_assert!(matches!(caller.role, Role::Admin | Role::Staff));
        let refund = request.refund == Some(true);
        let action =
            match (
                request.payment_intent_id,
                request.payee_id,
                refund,
                request.duplicate_of,
            ) {
                (Some(intent), None, false, None) => ResolutionAction::Intent(intent),
                (None, Some(payee), false, None) => ResolutionAction::Payee(payee),
                (None, None, true, None) => ResolutionAction::Refund,
                (None, None, false, Some(original)) => ResolutionAction::Duplicate(original),
                _ => return Err(BankFeedError::InvalidResolution(
                    "give exactly one of payment_intent_id, payee_id, refund: true or duplicate_of",
                )),
            };
        let note = request.note.trim();
        if note.is_empty() || note.chars().count() > MAX_NOTE_CHARS || note.contains('\0') {
            return Err(BankFeedError::InvalidResolution(
                "note must say why, in 1 to 500 characters",
            ));
        }
        let respond = |resolved: &StoredBankTransaction| StoredResponse {
            status: 200,
            body: serde_json::to_string(&BankTransactionView::from(resolved))
                .expect("views serialize"),
        };
        let outcome = self
            .resolve_once(&claim, id, action, note, caller, &respond)
            .await?;
        match outcome {
            Idempotent::Replay(stored) => Ok(Reply {
                status: stored.status,
                body: stored.body,
                replayed: true,
            }),
            Idempotent::Fresh(Err(rejection)) => Err(rejection.into()),
            Idempotent::Fresh(Ok(resolved)) => {
                tracing::info!(bank_transaction = %id, action = action.as_str(), "suspense resolved");
                self.announce_resolution(&resolved, action).await?;
                let response = respond(&resolved);
                Ok(Reply {
                    status: response.status,
                    body: response.body,
                    replayed: false,
                })
            }
        }
    }
}

/// The feeds whose secrets verify this delivery, or why none does. With several accounts on
/// one provider each is tried; a commune has a handful, so that is a few HMACs.
fn verified_feeds<'a>(
    provider: Provider,
    feeds: &'a [Feed],
    headers: &[(String, String)],
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<&'a Feed>, VerifyError> {
    let mut verified = Vec::new();
    let mut refusal = VerifyError::NotConfigured;
    for feed in feeds {
        let secrets: Vec<Secret> = feed
            .secrets
            .values
            .iter()
            .filter_map(|s| Secret::new(provider, s).ok())
            .collect();
        match bank_feed::verify(provider, headers, body, &secrets, now) {
            Ok(()) => verified.push(feed),
            // The most telling reason wins: a stale timestamp or a missing header says more
            // than "no secret matched".
            Err(error) if refusal_rank(&error) >= refusal_rank(&refusal) => refusal = error,
            Err(_) => {}
        }
    }
    if verified.is_empty() {
        Err(refusal)
    } else {
        Ok(verified)
    }
}

fn refusal_rank(error: &VerifyError) -> u8 {
    match error {
        VerifyError::NotConfigured => 0,
        VerifyError::SignatureInvalid => 1,
        VerifyError::SignatureMissing { .. } => 2,
        VerifyError::Malformed(_) => 3,
        VerifyError::TimestampOutOfWindow { .. } => 4,
    }
}
