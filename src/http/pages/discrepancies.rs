//! Where the bank and the ledger disagree: each running balance a bank feed reported that
//! differs from the ledger's balance of that collection account after the same transfer (the
//! rows of `GET /v1/reconciliation/discrepancies`), in plain words for the commune's staff.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use uuid::Uuid;

use super::{grouped_text as amount, page, Frame};
use crate::domain::statistics::period::vietnam_local;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::bank_feed::models::{CollectionAccountView, DiscrepancyView};
use crate::services::ledger::PageQuery;

/// One disagreement, as the page shows it.
pub struct Disagreement {
    pub id: Uuid,
    /// The account's holder and number ("NGUYEN VAN A · 0123456789").
    pub account: String,
    pub when: String,
    pub bank_balance: String,
    pub ledger_balance: String,
    pub difference: String,
}

#[derive(Template)]
#[template(path = "discrepancies.html")]
struct DiscrepanciesPage<'a> {
    f: &'a Frame,
    rows: Vec<Disagreement>,
}

fn disagreement(
    view: &DiscrepancyView,
    accounts: &HashMap<Uuid, &CollectionAccountView>,
) -> Disagreement {
    Disagreement {
        id: view.id,
        account: accounts
            .get(&view.collection_account_id)
            .map(|a| format!("{} · {}", a.holder_name, a.account_number))
            .unwrap_or_else(|| view.collection_account_id.to_string()),
        when: vietnam_local(view.detected_at)
            .format("%d/%m/%Y %H:%M")
            .to_string(),
        bank_balance: amount(&view.bank_balance),
        ledger_balance: amount(&view.ledger_balance),
        difference: amount(&view.difference),
    }
}

pub async fn discrepancies_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let read = state
        .run(move |s| async move {
            let found = s
                .bank_feed
                .discrepancies(PageQuery {
                    cursor: None,
                    limit: Some(500),
                })
                .await
                .map_err(ApiError::from)?;
            let accounts = s
                .bank_feed
                .collection_accounts()
                .await
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>((found, accounts))
        })
        .await;
    let (found, accounts) = match read {
        Ok(read) => read,
        Err(e) => return super::refusal(&request, &e),
    };
    let by_id = accounts.data.iter().map(|a| (a.id, a)).collect();
    let frame = Frame::new(&request);
    let body = DiscrepanciesPage {
        f: &frame,
        rows: found
            .data
            .iter()
            .map(|view| disagreement(view, &by_id))
            .collect(),
    };
    page(&request, &frame, StatusCode::OK, &body)
}
