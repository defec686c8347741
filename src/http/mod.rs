//! HTTP: routes, extractors, access policy and the error mapping.

pub mod bank_feed;
pub mod board_links;
pub mod error;
pub mod events;
pub mod extract;
pub mod imports;
mod openapi;
pub mod pages;
pub mod payers;
pub mod payments;
pub mod policy;
pub mod registry;
pub mod routes;
pub mod school_corrections;
pub mod school_files;
pub mod schools;
pub mod sse;
pub mod statistics;
mod strict_json;
pub mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, App, HttpRequest, HttpResponse, Resource, ResponseError, Route};
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::Clock;
use crate::services::auth::AuthService;
use crate::services::bank_feed::BankFeedService;
use crate::services::events::PaymentEvents;
use crate::services::ledger::LedgerService;
use crate::services::payers::PayerService;
use crate::services::payments::PaymentService;
use crate::services::registry::RegistryService;
use crate::services::schools::reminders::ReminderService;
use crate::services::schools::SchoolService;
use crate::services::statistics::StatisticsService;
use crate::services::web::WebService;
use crate::store::Store;
use error::ApiError;
use extract::BodyLimit;
pub use openapi::{openapi_yaml, ApiDoc};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ledger: LedgerService,
    pub payments: PaymentService,
    pub registry: RegistryService,
    pub events: PaymentEvents,
    pub bank_feed: BankFeedService,
    pub payers: PayerService,
    pub schools: SchoolService,
    pub reminders: ReminderService,
    pub auth: AuthService,
    pub statistics: StatisticsService,
    /// The web app's browser sessions and first-run setup.
    pub web: WebService,
    pub clock: Clock,
    pub metrics: PrometheusHandle,
    /// The runtime the service was built on, where the database pool's connections live.
    pub runtime: tokio::runtime::Handle,
}

impl AppState {
    /// Runs a use case on the service's runtime rather than on the actix worker that read the
    /// request. A database connection belongs to the runtime it was opened on: were use cases
    /// run on the workers, connections would be tied to worker threads, and a worker that
    /// stops first at shutdown would break the requests another worker is still finishing.
    pub async fn run<T, E, Work>(
        &self,
        use_case: impl FnOnce(AppState) -> Work,
    ) -> Result<T, ApiError>
    where
        Work: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError>,
    {
        let work = use_case(self.clone());
        // The request's span goes along, so the use case's logs keep its request id and user.
        let task = self.runtime.spawn(
            async move { work.await.map_err(Into::into) }.instrument(tracing::Span::current()),
        );
        match task.await {
            Ok(result) => result,
            Err(failure) => {
                tracing::error!(error = %failure, "use case did not finish");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "the service could not finish this request; try again",
                ))
            }
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole service: every route, the access policy, metrics, request ids and tracing.
/// `max_body_bytes` is the body limit of every route that does not set its own.
pub fn app(
    state: AppState,
    max_body_bytes: usize,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .app_data(BodyLimit(max_body_bytes))
        .configure(routes)
        .default_service(web::to(not_found))
        // The last layer added runs first: request id and span, then metrics, then access.
        .wrap(from_fn(policy::authorize))
        .wrap(from_fn(record_metrics))
        .wrap(from_fn(trace_request))
}

/// A path; a method it does not take is answered 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// GET, and HEAD as GET without the body (uptime checkers ask with HEAD).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn routes(config: &mut web::ServiceConfig) {
    use web::{patch, post, put};
    config
        .service(resource("/healthz").route(get().to(routes::healthz)))
        .service(resource("/readyz").route(get().to(routes::readyz)))
        .service(resource("/metrics").route(get().to(routes::metrics)))
        .service(resource("/v1/auth/token").route(post().to(routes::token)))
        .service(
            resource("/v1/accounts")
                .route(post().to(routes::create_account))
                .route(get().to(routes::list_accounts)),
        )
        .service(resource("/v1/accounts/{account}").route(get().to(routes::get_account)))
        .service(
            resource("/v1/accounts/{account}/entries").route(get().to(routes::account_entries)),
        )
        .service(
            resource("/v1/transactions")
                .route(post().to(routes::post_transaction))
                .route(get().to(routes::list_transactions)),
        )
        .service(resource("/v1/transactions/batch").route(post().to(routes::post_batch)))
        .service(resource("/v1/transactions/{id}").route(get().to(routes::get_transaction)))
        .service(
            resource("/v1/transactions/{id}/reverse").route(post().to(routes::reverse_transaction)),
        )
        .service(resource("/v1/ledger/verify").route(get().to(routes::verify)))
        .service(resource("/v1/banks").route(get().to(payments::list_banks)))
        .service(resource("/v1/qr/parse").route(post().to(payments::parse_qr)))
        .service(
            resource("/v1/payees")
                .route(post().to(payments::create_payee))
                .route(get().to(payments::list_payees)),
        )
        .service(
            resource("/v1/payees/{id}")
                .route(get().to(payments::get_payee))
                .route(patch().to(payments::update_payee)),
        )
        .service(resource("/v1/payees/{id}/qr.svg").route(get().to(payments::payee_qr_svg)))
        .service(resource("/v1/payees/{id}/qr.png").route(get().to(payments::payee_qr_png)))
        .service(resource("/v1/payees/{id}/sticker.svg").route(get().to(payments::payee_sticker)))
        .service(resource("/v1/payees/{id}/events").route(get().to(events::payee_events)))
        .service(
            resource("/v1/payees/{id}/cash-payments")
                .route(post().to(payers::record_cash_payment))
                .route(get().to(payers::list_cash_payments)),
        )
        .service(resource("/v1/payer-accounts").route(get().to(payers::list_payer_accounts)))
        .service(
            resource("/v1/payer-accounts/{hash}/link").route(post().to(payers::link_payer_account)),
        )
        .service(
            resource("/v1/payer-accounts/{hash}/unlink")
                .route(post().to(payers::unlink_payer_account)),
        )
        .service(
            resource("/v1/payer-accounts/{hash}/audit")
                .route(get().to(payers::payer_account_audit)),
        )
        .service(
            resource("/v1/residents/{id}/bank-accounts")
                .route(post().to(payers::register_resident_bank_account)),
        )
        .service(
            resource("/v1/payees/{id}/payment-intents")
                .route(get().to(payments::list_payee_intents)),
        )
        .service(resource("/v1/payment-intents").route(post().to(payments::create_intent)))
        .service(resource("/v1/payment-intents/{id}").route(get().to(payments::get_intent)))
        .service(
            resource("/v1/payment-intents/{id}/cancel").route(post().to(payments::cancel_intent)),
        )
        .service(
            resource("/v1/payment-intents/{id}/qr.svg").route(get().to(payments::intent_qr_svg)),
        )
        .service(
            resource("/v1/payment-intents/{id}/qr.png").route(get().to(payments::intent_qr_png)),
        )
        .service(
            resource("/v1/collection-accounts")
                .route(get().to(bank_feed::list_collection_accounts)),
        )
        .service(resource("/v1/collection-accounts/{id}/feed").route(put().to(bank_feed::set_feed)))
        .service(
            resource("/v1/collection-accounts/{id}/test-delivery")
                .route(post().to(bank_feed::send_test_delivery)),
        )
        .service(
            resource("/v1/webhooks/test-deliveries")
                .route(get().to(bank_feed::list_test_deliveries)),
        )
        .service(
            resource("/v1/webhooks/{provider}")
                .app_data(BodyLimit(crate::services::bank_feed::MAX_WEBHOOK_BYTES))
                .route(post().to(bank_feed::receive_webhook)),
        )
        .service(
            resource("/v1/bank-transactions/{id}").route(get().to(bank_feed::get_bank_transaction)),
        )
        .service(
            resource("/v1/reconciliation/unmatched").route(get().to(bank_feed::list_unmatched)),
        )
        .service(
            resource("/v1/reconciliation/unmatched/{id}/resolve")
                .route(post().to(bank_feed::resolve_unmatched)),
        )
        .service(
            resource("/v1/reconciliation/discrepancies")
                .route(get().to(bank_feed::list_discrepancies)),
        )
        .service(
            resource("/v1/hamlets")
                .route(post().to(registry::create_hamlet))
                .route(get().to(registry::list_hamlets)),
        )
        .service(
            resource("/v1/hamlets/{code}")
                .route(get().to(registry::get_hamlet))
                .route(patch().to(registry::rename_hamlet)),
        )
        .service(resource("/v1/hamlets/{code}/merge").route(post().to(registry::merge_hamlet)))
        .service(
            resource("/v1/households")
                .route(post().to(registry::create_household))
                .route(get().to(registry::list_households)),
        )
        .service(
            resource("/v1/households/{id}")
                .route(get().to(registry::get_household))
                .route(patch().to(registry::update_household)),
        )
        .service(
            resource("/v1/residents")
                .route(post().to(registry::create_resident))
                .route(get().to(registry::list_residents)),
        )
        .service(
            resource("/v1/residents/{id}")
                .route(get().to(registry::get_resident))
                .route(patch().to(registry::update_resident)),
        )
        .service(
            resource("/v1/residents/{id}/consents")
                .route(post().to(registry::record_consent))
                .route(get().to(registry::list_consents)),
        )
        .service(
            resource("/v1/reconciliation/statements")
                .app_data(BodyLimit(crate::domain::statement::MAX_STATEMENT_BYTES))
                .route(post().to(bank_feed::import_statement)),
        )
        .service(
            resource("/v1/registry/import")
                .app_data(BodyLimit(imports::MAX_IMPORT_BYTES))
                .route(post().to(imports::import_residents)),
        )
        .service(
            resource("/v1/surveys/import")
                .app_data(BodyLimit(imports::MAX_IMPORT_BYTES))
                .route(post().to(imports::import_survey)),
        )
        .service(resource("/v1/statistics/adoption").route(get().to(statistics::adoption)))
        .service(
            resource("/v1/audit/personal-data-access")
                .route(get().to(statistics::personal_data_access)),
        )
        // The web app's block: a payee's own money, then the pages.
        .service(
            resource("/v1/payees/{id}/payments").route(get().to(payments::list_received_payments)),
        )
        .service(resource("/v1/payees/{id}/summary").route(get().to(payments::payee_summary)))
        .service(
            resource("/v1/board-links")
                .route(get().to(board_links::list_board_links))
                .route(post().to(board_links::create_board_link)),
        )
        .service(
            resource("/v1/board-links/{id}/revoke")
                .route(post().to(board_links::revoke_board_link)),
        )
        .configure(pages::routes)
        .configure(school_routes)
        // User administration and the audit trail.
        .service(resource("/v1/auth/password").route(post().to(users::change_own_password)))
        .service(
            resource("/v1/users")
                .route(get().to(users::list_users))
                .route(post().to(users::create_user)),
        )
        .service(
            resource("/v1/users/{username}")
                .route(get().to(users::get_user))
                .route(patch().to(users::update_user)),
        )
        .service(
            resource("/v1/users/{username}/reset-password").route(post().to(users::reset_password)),
        )
        .service(resource("/v1/audit").route(get().to(users::audit_trail)));
}

/// School fee collection (`http/schools.rs`).
fn school_routes(config: &mut web::ServiceConfig) {
    use web::post;
    config
        .service(
            resource("/v1/schools/{school}/years")
                .route(post().to(schools::create_year))
                .route(get().to(schools::list_years)),
        )
        .service(
            resource("/v1/schools/{school}/classes")
                .route(post().to(schools::create_class))
                .route(get().to(schools::list_classes)),
        )
        .service(
            resource("/v1/schools/{school}/pupils")
                .route(post().to(schools::create_pupil))
                .route(get().to(schools::list_pupils)),
        )
        .service(
            resource("/v1/schools/{school}/roster/import")
                .app_data(BodyLimit(imports::MAX_IMPORT_BYTES))
                .route(post().to(schools::import_roster)),
        )
        .service(
            resource("/v1/schools/{school}/pupils/{pupil}").route(get().to(schools::get_pupil)),
        )
        .service(
            resource("/v1/schools/{school}/pupils/{pupil}/move")
                .route(post().to(schools::move_pupil)),
        )
        .service(
            resource("/v1/schools/{school}/pupils/{pupil}/statement")
                .route(get().to(schools::pupil_statement)),
        )
        .service(
            resource("/v1/schools/{school}/fee-items")
                .route(post().to(schools::create_fee_item))
                .route(get().to(schools::list_fee_items)),
        )
        .service(
            resource("/v1/schools/{school}/fee-items/{item}/enrolments")
                .route(post().to(schools::enrol)),
        )
        .service(
            resource("/v1/schools/{school}/exemptions").route(post().to(schools::create_exemption)),
        )
        .service(
            resource("/v1/schools/{school}/runs")
                .route(post().to(schools::create_run))
                .route(get().to(schools::list_runs)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/preview")
                .route(get().to(schools::preview_run)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/post").route(post().to(schools::post_run)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/status").route(get().to(schools::run_status)),
        )
        .service(resource("/v1/schools/{school}/balances").route(get().to(schools::balances)))
        .service(
            resource("/v1/schools/{school}/cash-receipts").route(post().to(schools::record_cash)),
        )
        .service(
            resource("/v1/schools/{school}/cash-receipts/{receipt}")
                .route(get().to(schools::get_receipt)),
        )
        .service(
            resource("/v1/schools/{school}/cash-receipts/{receipt}/receipt.html")
                .route(get().to(schools::receipt_html)),
        )
        .service(
            resource("/v1/schools/{school}/cash-receipts/{receipt}/receipt.pdf")
                .route(get().to(school_files::receipt_pdf)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/export.csv")
                .route(get().to(school_files::export_run_csv)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/export.xlsx")
                .route(get().to(school_files::export_run_xlsx)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/reminders")
                .route(get().to(school_files::preview_reminders)),
        )
        .service(
            resource("/v1/schools/{school}/runs/{run}/reminders/send")
                .route(post().to(school_files::send_reminders)),
        )
        .service(
            resource("/v1/schools/{school}/cash-receipts/{receipt}/cancel")
                .route(post().to(schools::cancel_receipt)),
        )
        .service(
            resource("/v1/schools/{school}/parent-links")
                .route(post().to(schools::create_parent_link)),
        )
        .service(
            resource("/v1/schools/{school}/parent-links/{link}/revoke")
                .route(post().to(schools::revoke_parent_link)),
        )
        .service(resource("/v1/parent-links/{token}").route(get().to(schools::parent_view)))
        .service(
            resource("/v1/households/{id}/payment-request")
                .route(post().to(schools::household_payment_request)),
        )
        .configure(school_correction_routes);
}

/// Corrections of posted runs, refunds and household links (`http/school_corrections.rs`).
fn school_correction_routes(config: &mut web::ServiceConfig) {
    use school_corrections as corrections;
    use web::post;
    config
        .service(
            resource("/v1/schools/{school}/runs/{run}/reverse")
                .route(post().to(corrections::reverse_run)),
        )
        .service(
            resource("/v1/schools/{school}/adjustments")
                .route(post().to(corrections::adjust_charge)),
        )
        .service(
            resource("/v1/schools/{school}/refunds").route(post().to(corrections::refund_credit)),
        )
        .service(
            resource("/v1/schools/{school}/household-links")
                .route(post().to(corrections::create_household_link)),
        )
        .service(
            resource("/v1/schools/{school}/household-links/{link}/revoke")
                .route(post().to(corrections::revoke_household_link)),
        )
        .service(
            resource("/v1/household-links/{token}")
                .route(get().to(corrections::household_parent_view)),
        );
}

/// Gives every request an id (the caller's `x-request-id`, or a new one), runs it in a span
/// that carries the id, and answers with the same id.
async fn trace_request(
    mut request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = match request.headers().get(&REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.to_str().unwrap_or("-"),
        method = %request.method(),
        path = %request.path(),
        user = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.call(request).instrument(span.clone()).await?;
    if !response.headers().contains_key(&REQUEST_ID) {
        response.headers_mut().insert(REQUEST_ID, request_id);
    }
    span.in_scope(|| {
        tracing::info!(
            latency_ms = started.elapsed().as_millis() as u64,
            status = response.status().as_u16(),
            "finished processing request"
        )
    });
    Ok(response)
}

async fn record_metrics(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(path) = request.match_pattern() else {
        return next.call(request).await;
    };
    let started = Instant::now();
    let method = request.method().to_string();
    let response = next.call(request).await?;
    let labels = [
        ("method", method),
        ("path", path),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

async fn not_found() -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        "no such endpoint; see /v1 in the API spec",
    )
    .error_response()
}

/// 405, with the methods the route does take in `Allow` (RFC 9110).
async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not take that method",
    )
    .error_response();
    let allowed = request
        .match_pattern()
        .map(|path| policy::methods(&path).join(","))
        .unwrap_or_default();
    if let Ok(allowed) = HeaderValue::from_str(&allowed) {
        response.headers_mut().insert(header::ALLOW, allowed);
    }
    response
}
