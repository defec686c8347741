//! The market hall's board: one screen announcing each payment by stall ("Quầy 12 đã nhận
//! 35.000đ"), opened with a read-only link staff create and revoke. A link is a random
//! 256-bit token shown once; only its SHA-256 is kept, as for parents' links. A revocation is
//! told at once to this instance's open boards (the other instances' boards see it at their
//! next check, within [`BOARD_RECHECK`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{token_hash, WebService};
use crate::domain::audit::AuditAction;
use crate::domain::payee::bounded_text;
use crate::services::auth::Caller;
use crate::services::PublicError;
use crate::store::web::{BoardLinkRow, Credit};
use crate::store::StoreError;

/// How often an open board checks that its link still stands (revocations made on another
/// instance reach it this late at most).
pub const BOARD_RECHECK: Duration = Duration::from_secs(5);
/// The longest name a board link may have.
const MAX_LABEL_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no market board link in force has this id")]
    LinkNotFound,
    #[error("label must be 1 to {MAX_LABEL_CHARS} characters, e.g. \"Chợ Tức Tranh, cổng chính\"")]
    InvalidLabel,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PublicError for BoardError {
    fn status(&self) -> u16 {
        match self {
            BoardError::LinkNotFound => 404,
            BoardError::InvalidLabel => 400,
            BoardError::Store(store) => store.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            BoardError::LinkNotFound => "BOARD_LINK_NOT_FOUND",
            BoardError::InvalidLabel => "INVALID_BOARD_LINK",
            BoardError::Store(store) => store.code(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewBoardLinkRequest {
    /// Where the screen hangs, for staff to tell links apart.
    #[schema(example = "Chợ Tức Tranh, cổng chính")]
    pub label: String,
}

/// A link just made: its token and address are shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardLinkCreated {
    pub id: Uuid,
    pub label: String,
    pub token: String,
    /// The board's page: open it on the market hall's screen.
    #[schema(example = "/app/board/5f0c…")]
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardLinkView {
    pub id: Uuid,
    pub label: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardLinkPage {
    pub data: Vec<BoardLinkView>,
}

impl From<&BoardLinkRow> for BoardLinkView {
    fn from(row: &BoardLinkRow) -> Self {
        Self {
            id: row.id,
            label: row.label.clone(),
            created_by: row.created_by_username.clone(),
            created_at: crate::clock::to_datetime(row.created_at),
            revoked_at: row.revoked_at.map(crate::clock::to_datetime),
        }
    }
}

/// The board's address for a token.
pub fn board_url(token: &str) -> String {
    format!("/app/board/{token}")
}

impl WebService {
    pub async fn create_board_link(
        &self,
        caller: &Caller,
        request: NewBoardLinkRequest,
    ) -> Result<BoardLinkCreated, BoardError> {
        let label = bounded_text("label", &request.label, MAX_LABEL_CHARS)
            .map_err(|_| BoardError::InvalidLabel)?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let link = BoardLinkRow {
            id: self.clock.new_id(),
            label,
            created_by_username: caller.username.clone(),
            created_at: self.clock.now_micros(),
            revoked_at: None,
        };
        let mut unit = self.store.begin().await?;
        unit.insert_board_link(&link, &token_hash(&token)).await?;
        // The token is a credential: the trail names the link, never the token.
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::BoardLinkCreate,
            link.id,
            None,
            Some(serde_json::json!({ "label": link.label })),
        ))
        .await?;
        unit.commit().await?;
        Ok(BoardLinkCreated {
            id: link.id,
            label: link.label,
            url: board_url(&token),
            token,
        })
    }

    pub async fn board_links(&self) -> Result<BoardLinkPage, BoardError> {
        let rows = self.store.board_links().await?;
        Ok(BoardLinkPage {
            data: rows.iter().map(BoardLinkView::from).collect(),
        })
    }

    /// Revokes a link: its page answers 404 and its open boards stop at once.
    pub async fn revoke_board_link(&self, caller: &Caller, id: Uuid) -> Result<(), BoardError> {
        let mut unit = self.store.begin().await?;
        if !unit.revoke_board_link(id, self.clock.now_micros()).await? {
            return Err(BoardError::LinkNotFound);
        }
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::BoardLinkRevoke,
            id,
            Some(serde_json::json!({ "revoked": false })),
            Some(serde_json::json!({ "revoked": true })),
        ))
        .await?;
        unit.commit().await?;
        self.board_revocations.send_modify(|count| *count += 1);
        Ok(())
    }

    /// The link in force a board's token opens; an unknown or revoked one is not found.
    pub async fn board_link(&self, token: &str) -> Result<Uuid, BoardError> {
        self.store
            .live_board_link(&token_hash(token.trim()))
            .await?
            .ok_or(BoardError::LinkNotFound)
    }

    /// Changes each time a link is revoked on this instance: open boards check theirs.
    pub fn board_revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.board_revocations.subscribe()
    }

    /// The credits to every payee after `after`, oldest first, at most `limit`: what a
    /// reconnecting board missed.
    pub async fn market_credits_after(
        &self,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<Credit>, BoardError> {
        Ok(self.store.credits_after(None, after, limit).await?)
    }
}
