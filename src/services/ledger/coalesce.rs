//! Group commit of single-transaction requests (see `services::group_commit`): one
//! `post_singles` call, one database transaction, for every request in the group. A request
//! retried under the same idempotency key while its first attempt waits goes in a later round
//! and replays the first one's stored response.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::audit::AuditRecord;
use crate::domain::transaction::NewTransaction;
use crate::services::group_commit::{Coalescer, GroupWriter};
use crate::store::{
    IdempotencyClaim, SingleOutcome, SingleWrite, Store, StoreError, StoredResponse,
};

/// Writers running at once; more would only contend for the same rows and cores.
const WRITERS: usize = 2;

pub struct SingleRequest {
    pub created_by: Uuid,
    pub claim: IdempotencyClaim,
    pub transaction: NewTransaction,
    pub response: StoredResponse,
    /// Written with the transaction when it posts: the change a person made (a reversal).
    pub audit: Option<AuditRecord>,
}

pub struct SingleWriter {
    store: Arc<dyn Store>,
}

pub type Singles = Coalescer<SingleWriter>;

/// Starts the writer tasks; they stop when the last clone is dropped.
pub fn start(store: Arc<dyn Store>) -> Singles {
    Coalescer::start(SingleWriter { store }, WRITERS)
}

#[async_trait::async_trait]
impl GroupWriter for SingleWriter {
    type Request = SingleRequest;
    type Outcome = SingleOutcome;
    type Error = StoreError;
    type Key = (Uuid, String);

    const MAX_GROUP: usize = 128;

    async fn write(&self, requests: &[SingleRequest]) -> Result<Vec<SingleOutcome>, StoreError> {
        let writes: Vec<SingleWrite<'_>> = requests
            .iter()
            .map(|request| SingleWrite {
                created_by: request.created_by,
                claim: &request.claim,
                transaction: &request.transaction,
                response: &request.response,
                audit: request.audit.as_ref(),
            })
            .collect();
        self.store.post_singles(&writes).await
    }

    fn key(&self, request: &SingleRequest) -> Option<(Uuid, String)> {
        Some((request.claim.user_id, request.claim.key.clone()))
    }
}
