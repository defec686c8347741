//! HTTP: routes, extractors, access policy and the error mapping.

pub mod bank_feed;
pub mod error;
pub mod events;
pub mod extract;
pub mod payments;
pub mod policy;
pub mod routes;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;

use crate::clock::Clock;
use crate::services::auth::AuthService;
use crate::services::bank_feed::BankFeedService;
use crate::services::events::PaymentEvents;
use crate::services::ledger::LedgerService;
use crate::services::payments::PaymentService;
use crate::store::Store;
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ledger: LedgerService,
    pub payments: PaymentService,
    pub events: PaymentEvents,
    pub bank_feed: BankFeedService,
    pub auth: AuthService,
    pub clock: Clock,
    pub metrics: PrometheusHandle,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/v1/auth/token", post(routes::token))
        .route(
            "/v1/accounts",
            post(routes::create_account).get(routes::list_accounts),
        )
        .route("/v1/accounts/{account}", get(routes::get_account))
        .route(
            "/v1/accounts/{account}/entries",
            get(routes::account_entries),
        )
        .route(
            "/v1/transactions",
            post(routes::post_transaction).get(routes::list_transactions),
        )
        .route("/v1/transactions/batch", post(routes::post_batch))
        .route("/v1/transactions/{id}", get(routes::get_transaction))
        .route(
            "/v1/transactions/{id}/reverse",
            post(routes::reverse_transaction),
        )
        .route("/v1/ledger/verify", get(routes::verify))
        .route("/v1/banks", get(payments::list_banks))
        .route("/v1/qr/parse", post(payments::parse_qr))
        .route(
            "/v1/payees",
            post(payments::create_payee).get(payments::list_payees),
        )
        .route(
            "/v1/payees/{id}",
            get(payments::get_payee).patch(payments::update_payee),
        )
        .route("/v1/payees/{id}/qr.svg", get(payments::payee_qr_svg))
        .route("/v1/payees/{id}/qr.png", get(payments::payee_qr_png))
        .route("/v1/payees/{id}/sticker.svg", get(payments::payee_sticker))
        .route("/v1/payees/{id}/events", get(events::payee_events))
        .route(
            "/v1/payees/{id}/payment-intents",
            get(payments::list_payee_intents),
        )
        .route("/v1/payment-intents", post(payments::create_intent))
        .route("/v1/payment-intents/{id}", get(payments::get_intent))
        .route(
            "/v1/payment-intents/{id}/cancel",
            post(payments::cancel_intent),
        )
        .route(
            "/v1/payment-intents/{id}/qr.svg",
            get(payments::intent_qr_svg),
        )
        .route(
            "/v1/payment-intents/{id}/qr.png",
            get(payments::intent_qr_png),
        )
        .route(
            "/v1/collection-accounts",
            get(bank_feed::list_collection_accounts),
        )
        .route(
            "/v1/collection-accounts/{id}/feed",
            put(bank_feed::set_feed),
        )
        .route(
            "/v1/webhooks/{provider}",
            post(bank_feed::receive_webhook).layer(DefaultBodyLimit::max(
                crate::services::bank_feed::MAX_WEBHOOK_BYTES,
            )),
        )
        .route(
            "/v1/bank-transactions/{id}",
            get(bank_feed::get_bank_transaction),
        )
        .route(
            "/v1/reconciliation/unmatched",
            get(bank_feed::list_unmatched),
        )
        .route(
            "/v1/reconciliation/unmatched/{id}/resolve",
            post(bank_feed::resolve_unmatched),
        )
        .route(
            "/v1/reconciliation/discrepancies",
            get(bank_feed::list_discrepancies),
        )
        .route(
            "/v1/reconciliation/statements",
            post(bank_feed::import_statement).layer(DefaultBodyLimit::max(
                crate::domain::statement::MAX_STATEMENT_BYTES,
            )),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            policy::authorize,
        ))
        .route_layer(middleware::from_fn(record_metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state);

    api.layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %request_id,
                        method = %request.method(),
                        path = %request.uri().path(),
                        user = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn record_metrics(matched: MatchedPath, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("path", matched.as_str().to_owned()),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        "no such endpoint; see /v1 in the API spec",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not take that method",
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "market-ledger", description = "Payment ledger for a commune's cashless market: double-entry accounts and transactions, idempotent posting, invariant checks, payees with VietQR codes and payment intents, verified bank-feed webhooks matched and posted exactly once, suspense and reconciliation."),
    paths(
        routes::healthz, routes::readyz, routes::metrics, routes::token,
        routes::create_account, routes::list_accounts, routes::get_account, routes::account_entries,
        routes::post_transaction, routes::list_transactions, routes::post_batch,
        routes::get_transaction, routes::reverse_transaction, routes::verify,
        payments::list_banks, payments::parse_qr, payments::create_payee, payments::list_payees,
        payments::get_payee, payments::update_payee, payments::payee_qr_svg,
        payments::payee_qr_png, payments::payee_sticker, events::payee_events,
        payments::list_payee_intents,
        payments::create_intent, payments::get_intent, payments::cancel_intent,
        payments::intent_qr_svg, payments::intent_qr_png,
        bank_feed::list_collection_accounts, bank_feed::set_feed, bank_feed::receive_webhook,
        bank_feed::get_bank_transaction, bank_feed::list_unmatched, bank_feed::resolve_unmatched,
        bank_feed::list_discrepancies, bank_feed::import_statement,
    ),
    components(schemas(crate::services::events::PaymentReceived)),
    modifiers(&BearerAuth),
    tags((name = "operations"), (name = "auth"), (name = "ledger"), (name = "payees"),
        (name = "payment intents"), (name = "bank feed"), (name = "reconciliation"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The committed contract, `api-spec/openapi.yaml`.
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}
