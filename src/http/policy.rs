//! Who may call what. Every route is listed here; the `authorize` layer enforces it and a test
//! walks every route with every role.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::error::ApiError;
use super::AppState;
use crate::domain::user::Role;
use crate::services::auth::{AuthError, Caller};

#[derive(Debug, Clone, Copy)]
pub enum Access {
    Public,
    Roles(&'static [Role]),
}

#[derive(Debug, Clone, Copy)]
pub struct RoutePolicy {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Read the ledger: staff and the read-only auditor.
pub const LEDGER_READERS: &[Role] = &[Role::Admin, Role::Staff, Role::Auditor];
/// Move money and create accounts.
pub const LEDGER_WRITERS: &[Role] = &[Role::Admin, Role::Staff];
/// Every signed-in role. Vendor and school users see only their own payee's records: the
/// payment service answers them "not found" for any other.
pub const EVERYONE: &[Role] = &Role::ALL;
/// Issue and cancel payment intents: staff for any payee, vendors and schools for their own.
pub const INTENT_ISSUERS: &[Role] = &[Role::Admin, Role::Staff, Role::Vendor, Role::School];
/// Listen to a payee's live payments: staff for any payee, vendors and schools for their own.
pub const PAYMENT_LISTENERS: &[Role] = &[Role::Admin, Role::Staff, Role::Vendor, Role::School];

/// Make a test delivery: it posts a transfer as if the bank had reported it, so admins only.
pub const TEST_DELIVERY_SENDERS: &[Role] = &[Role::Admin];
/// Read the adoption statistics: aggregates only, suppressed, except raw figures for admins.
pub const STATISTICS_READERS: &[Role] = &[Role::Admin, Role::Staff, Role::Auditor];
/// Who read individual-level data: admins and the auditor who checks them.
pub const ACCESS_LOG_READERS: &[Role] = &[Role::Admin, Role::Auditor];
/// Keep the registry's households and residents: personal data, for staff only. Auditors see
/// residents only as aggregate statistics.
pub const REGISTRY_KEEPERS: &[Role] = &[Role::Admin, Role::Staff];
/// Read hamlets: no person in them, so the auditor too.
pub const HAMLET_READERS: &[Role] = &[Role::Admin, Role::Staff, Role::Auditor];
/// See and link payer accounts (personal data): staff and admin only, not the auditor.
pub const PAYER_LINKERS: &[Role] = &[Role::Admin, Role::Staff];
/// Manage users: admins only.
pub const USER_ADMINS: &[Role] = &[Role::Admin];
/// Read the audit trail: admins and the auditor.
pub const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// The one route a user whose password was reset may call.
pub const OWN_PASSWORD_PATH: &str = "/v1/auth/password";

/// Keep a school's fee collection (pupils, items, runs, cash): staff for every school, a school
/// user for its own (another school's records answer 404).
pub const SCHOOL_KEEPERS: &[Role] = &[Role::Admin, Role::Staff, Role::School];
/// A school's fund balances hold no person: the auditor reads them too.
pub const SCHOOL_BALANCE_READERS: &[Role] =
    &[Role::Admin, Role::Staff, Role::Auditor, Role::School];

/// A run's exports: the school's accountant, staff, and the auditor who checks the collection.
pub const SCHOOL_EXPORT_READERS: &[Role] = &[Role::Admin, Role::Staff, Role::Auditor, Role::School];

const fn route(method: &'static str, path: &'static str, access: Access) -> RoutePolicy {
    RoutePolicy {
        method,
        path,
        access,
    }
}

pub const ROUTES: &[RoutePolicy] = &[
    route("GET", "/healthz", Access::Public),
    route("GET", "/readyz", Access::Public),
    route("GET", "/metrics", Access::Public),
    route("POST", "/v1/auth/token", Access::Public),
    route("POST", "/v1/accounts", Access::Roles(LEDGER_WRITERS)),
    route("GET", "/v1/accounts", Access::Roles(LEDGER_READERS)),
    route(
        "GET",
        "/v1/accounts/{account}",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "GET",
        "/v1/accounts/{account}/entries",
        Access::Roles(LEDGER_READERS),
    ),
    route("POST", "/v1/transactions", Access::Roles(LEDGER_WRITERS)),
    route("GET", "/v1/transactions", Access::Roles(LEDGER_READERS)),
    route(
        "POST",
        "/v1/transactions/batch",
        Access::Roles(LEDGER_WRITERS),
    ),
    route(
        "GET",
        "/v1/transactions/{id}",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "POST",
        "/v1/transactions/{id}/reverse",
        Access::Roles(LEDGER_WRITERS),
    ),
    route("GET", "/v1/ledger/verify", Access::Roles(LEDGER_READERS)),
    route("GET", "/v1/banks", Access::Roles(EVERYONE)),
    route("POST", "/v1/qr/parse", Access::Roles(LEDGER_WRITERS)),
    route("POST", "/v1/payees", Access::Roles(LEDGER_WRITERS)),
    route("GET", "/v1/payees", Access::Roles(EVERYONE)),
    route("GET", "/v1/payees/{id}", Access::Roles(EVERYONE)),
    route("PATCH", "/v1/payees/{id}", Access::Roles(LEDGER_WRITERS)),
    route("GET", "/v1/payees/{id}/qr.svg", Access::Roles(EVERYONE)),
    route("GET", "/v1/payees/{id}/qr.png", Access::Roles(EVERYONE)),
    route(
        "GET",
        "/v1/payees/{id}/sticker.svg",
        Access::Roles(EVERYONE),
    ),
    route(
        "GET",
        "/v1/payees/{id}/events",
        Access::Roles(PAYMENT_LISTENERS),
    ),
    route(
        "GET",
        "/v1/payees/{id}/payment-intents",
        Access::Roles(EVERYONE),
    ),
    route(
        "POST",
        "/v1/payees/{id}/cash-payments",
        Access::Roles(INTENT_ISSUERS),
    ),
    route(
        "GET",
        "/v1/payees/{id}/cash-payments",
        Access::Roles(INTENT_ISSUERS),
    ),
    route("GET", "/v1/payer-accounts", Access::Roles(PAYER_LINKERS)),
    route(
        "POST",
        "/v1/payer-accounts/{hash}/link",
        Access::Roles(PAYER_LINKERS),
    ),
    route(
        "POST",
        "/v1/payer-accounts/{hash}/unlink",
        Access::Roles(PAYER_LINKERS),
    ),
    route(
        "GET",
        "/v1/payer-accounts/{hash}/audit",
        Access::Roles(PAYER_LINKERS),
    ),
    route(
        "POST",
        "/v1/residents/{id}/bank-accounts",
        Access::Roles(PAYER_LINKERS),
    ),
    route("POST", "/v1/payment-intents", Access::Roles(INTENT_ISSUERS)),
    route("GET", "/v1/payment-intents/{id}", Access::Roles(EVERYONE)),
    route(
        "POST",
        "/v1/payment-intents/{id}/cancel",
        Access::Roles(INTENT_ISSUERS),
    ),
    route(
        "GET",
        "/v1/payment-intents/{id}/qr.svg",
        Access::Roles(EVERYONE),
    ),
    route(
        "GET",
        "/v1/payment-intents/{id}/qr.png",
        Access::Roles(EVERYONE),
    ),
    route(
        "GET",
        "/v1/collection-accounts",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "POST",
        "/v1/collection-accounts/{id}/test-delivery",
        Access::Roles(TEST_DELIVERY_SENDERS),
    ),
    route(
        "PUT",
        "/v1/collection-accounts/{id}/feed",
        Access::Roles(LEDGER_WRITERS),
    ),
    // Bank feeds authenticate with their signature, checked on the raw body.
    route("POST", "/v1/webhooks/{provider}", Access::Public),
    route(
        "GET",
        "/v1/webhooks/test-deliveries",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "GET",
        "/v1/bank-transactions/{id}",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "GET",
        "/v1/reconciliation/unmatched",
        Access::Roles(LEDGER_READERS),
    ),
    route(
        "POST",
        "/v1/reconciliation/unmatched/{id}/resolve",
        Access::Roles(LEDGER_WRITERS),
    ),
    route(
        "GET",
        "/v1/reconciliation/discrepancies",
        Access::Roles(LEDGER_READERS),
    ),
    // Comparing only reads, but `ingest=true` records money: one policy per route.
    route(
        "POST",
        "/v1/reconciliation/statements",
        Access::Roles(LEDGER_WRITERS),
    ),
    route(
        "GET",
        "/v1/statistics/adoption",
        Access::Roles(STATISTICS_READERS),
    ),
    route(
        "GET",
        "/v1/audit/personal-data-access",
        Access::Roles(ACCESS_LOG_READERS),
    ),
    route("POST", "/v1/hamlets", Access::Roles(REGISTRY_KEEPERS)),
    route(
        "POST",
        "/v1/registry/import",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route(
        "POST",
        "/v1/surveys/import",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route("GET", "/v1/hamlets", Access::Roles(HAMLET_READERS)),
    route("GET", "/v1/hamlets/{code}", Access::Roles(HAMLET_READERS)),
    route(
        "PATCH",
        "/v1/hamlets/{code}",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route(
        "POST",
        "/v1/hamlets/{code}/merge",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route("POST", "/v1/households", Access::Roles(REGISTRY_KEEPERS)),
    route("GET", "/v1/households", Access::Roles(REGISTRY_KEEPERS)),
    route(
        "GET",
        "/v1/households/{id}",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route(
        "PATCH",
        "/v1/households/{id}",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route("POST", "/v1/residents", Access::Roles(REGISTRY_KEEPERS)),
    route("GET", "/v1/residents", Access::Roles(REGISTRY_KEEPERS)),
    route("GET", "/v1/residents/{id}", Access::Roles(REGISTRY_KEEPERS)),
    route(
        "PATCH",
        "/v1/residents/{id}",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route(
        "POST",
        "/v1/residents/{id}/consents",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    route(
        "GET",
        "/v1/residents/{id}/consents",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    // School fee collection.
    route(
        "POST",
        "/v1/schools/{school}/years",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/years",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/classes",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/classes",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/pupils",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/pupils",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/roster/import",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/pupils/{pupil}",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/pupils/{pupil}/move",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/pupils/{pupil}/statement",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/fee-items",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/fee-items",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/fee-items/{item}/enrolments",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/exemptions",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/runs",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs/{run}/preview",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/runs/{run}/post",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs/{run}/status",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/balances",
        Access::Roles(SCHOOL_BALANCE_READERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/cash-receipts",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/cash-receipts/{receipt}",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/cash-receipts/{receipt}/receipt.html",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/cash-receipts/{receipt}/receipt.pdf",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs/{run}/export.csv",
        Access::Roles(SCHOOL_EXPORT_READERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs/{run}/export.xlsx",
        Access::Roles(SCHOOL_EXPORT_READERS),
    ),
    route(
        "GET",
        "/v1/schools/{school}/runs/{run}/reminders",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/runs/{run}/reminders/send",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/cash-receipts/{receipt}/cancel",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/parent-links",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/parent-links/{link}/revoke",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route("GET", "/v1/parent-links/{token}", Access::Public),
    // Corrections of posted runs, refunds and household links: the school's keepers.
    route(
        "POST",
        "/v1/schools/{school}/runs/{run}/reverse",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/adjustments",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/refunds",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/household-links",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/v1/schools/{school}/household-links/{link}/revoke",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route("GET", "/v1/household-links/{token}", Access::Public),
    // A household's QR across schools: the registry's households, so commune staff only.
    route(
        "POST",
        "/v1/households/{id}/payment-request",
        Access::Roles(REGISTRY_KEEPERS),
    ),
    // The web app's block: a payee's own money (vendors and schools read their own only).
    route("GET", "/v1/payees/{id}/payments", Access::Roles(EVERYONE)),
    route("GET", "/v1/payees/{id}/summary", Access::Roles(EVERYONE)),
    // User administration and the audit trail.
    route("POST", OWN_PASSWORD_PATH, Access::Roles(EVERYONE)),
    // Market board links: commune staff.
    route("GET", "/v1/board-links", Access::Roles(LEDGER_WRITERS)),
    route("POST", "/v1/board-links", Access::Roles(LEDGER_WRITERS)),
    route(
        "POST",
        "/v1/board-links/{id}/revoke",
        Access::Roles(LEDGER_WRITERS),
    ),
    route("GET", "/v1/users", Access::Roles(USER_ADMINS)),
    route("POST", "/v1/users", Access::Roles(USER_ADMINS)),
    route("GET", "/v1/users/{username}", Access::Roles(USER_ADMINS)),
    route("PATCH", "/v1/users/{username}", Access::Roles(USER_ADMINS)),
    route(
        "POST",
        "/v1/users/{username}/reset-password",
        Access::Roles(USER_ADMINS),
    ),
    route("GET", "/v1/audit", Access::Roles(AUDIT_READERS)),
];

/// The web app's pages, under the same roles as the API. A page is opened with the session
/// cookie of a browser login (`/app/login`), and its forms carry a CSRF token. A payee's page
/// answers vendor and school users 404 unless it is their own payee's, as the API does.
pub const PAGES: &[RoutePolicy] = &[
    route("GET", "/", Access::Public),
    route("GET", "/app/static/{file}", Access::Public),
    route("GET", "/app/login", Access::Public),
    route("POST", "/app/login", Access::Public),
    // The setup link proves itself with its one-time token.
    route("GET", "/app/setup", Access::Public),
    route("POST", "/app/setup", Access::Public),
    route("POST", "/app/logout", Access::Roles(EVERYONE)),
    route("GET", "/app", Access::Roles(EVERYONE)),
    // Onboarding a payee: the roles of `POST /v1/payees`.
    route("GET", "/app/payees/new", Access::Roles(LEDGER_WRITERS)),
    route("POST", "/app/payees/new", Access::Roles(LEDGER_WRITERS)),
    route(
        "POST",
        "/app/payees/new/scan",
        Access::Roles(LEDGER_WRITERS),
    ),
    route("GET", "/app/payees/{id}", Access::Roles(PAYMENT_LISTENERS)),
    route(
        "POST",
        "/app/payees/{id}/intents",
        Access::Roles(INTENT_ISSUERS),
    ),
    route("GET", "/app/payees/{id}/sticker", Access::Roles(EVERYONE)),
    // The commune staff's pages: the same roles as the API routes they show.
    route("GET", "/app/adoption", Access::Roles(STATISTICS_READERS)),
    route("GET", "/app/suspense", Access::Roles(LEDGER_READERS)),
    route(
        "POST",
        "/app/suspense/{id}/resolve",
        Access::Roles(LEDGER_WRITERS),
    ),
    route("GET", "/app/discrepancies", Access::Roles(LEDGER_READERS)),
    route("GET", "/app/statements", Access::Roles(LEDGER_WRITERS)),
    route("POST", "/app/statements", Access::Roles(LEDGER_WRITERS)),
    // The school office's pages: the roles of the schools API (a school user: its own school
    // only, another's 404); the parents' page proves itself with the parent link's token.
    route(
        "GET",
        "/app/schools/{school}/runs/{run}",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/app/schools/{school}/runs/{run}/cash",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/app/schools/{school}/runs/{run}/slips",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/app/schools/{school}/runs/{run}/reminders",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "POST",
        "/app/schools/{school}/runs/{run}/reminders/send",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route(
        "GET",
        "/app/schools/{school}/receipts/{receipt}",
        Access::Roles(SCHOOL_KEEPERS),
    ),
    route("GET", "/app/parents/{token}", Access::Public),
    // User administration: admins, as `/v1/users`.
    route("GET", "/app/users", Access::Roles(USER_ADMINS)),
    route("POST", "/app/users", Access::Roles(USER_ADMINS)),
    route("POST", "/app/users/{username}", Access::Roles(USER_ADMINS)),
    route(
        "POST",
        "/app/users/{username}/reset-password",
        Access::Roles(USER_ADMINS),
    ),
    // The market hall's board proves itself with its link's token; staff manage the links.
    route("GET", "/app/board/{token}", Access::Public),
    route("GET", "/app/board/{token}/events", Access::Public),
    route("GET", "/app/board-links", Access::Roles(LEDGER_WRITERS)),
    route("POST", "/app/board-links", Access::Roles(LEDGER_WRITERS)),
    route(
        "POST",
        "/app/board-links/{id}/revoke",
        Access::Roles(LEDGER_WRITERS),
    ),
];

/// Whether `role` may use the route (for the links and forms a page shows).
pub fn may(role: Role, method: &Method, path: &str) -> bool {
    match policy(method, path) {
        Some(Access::Public) => true,
        Some(Access::Roles(roles)) => roles.contains(&role),
        None => false,
    }
}

/// Where pages live: their refusals are pages too, not JSON.
pub fn is_page(path: &str) -> bool {
    path == "/" || path == "/app" || path.starts_with("/app/")
}

fn all_routes() -> impl Iterator<Item = &'static RoutePolicy> {
    ROUTES.iter().chain(PAGES)
}

/// The access rule of a route; HEAD is GET without the body, so it follows GET's rule.
pub fn policy(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    all_routes()
        .find(|r| r.method == method.as_str() && r.path == path)
        .map(|r| r.access)
}

/// The methods a route takes, HEAD included wherever GET is.
pub fn methods(path: &str) -> Vec<&'static str> {
    let mut methods = Vec::new();
    for route in all_routes().filter(|route| route.path == path) {
        methods.push(route.method);
        if route.method == "GET" {
            methods.push("HEAD");
        }
    }
    methods
}

/// Checks the bearer token (or, for pages and reads, the session cookie) and the caller's
/// role against the route's policy, and puts the caller on the request for the handler.
pub async fn authorize(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match admit(&request).await {
        Ok(Some(caller)) => {
            tracing::Span::current().record("user", caller.username.as_str());
            request.extensions_mut().insert(caller);
        }
        Ok(None) => {}
        Err(refusal) => {
            let page = request.match_pattern().is_some_and(|path| is_page(&path));
            return Ok(if page {
                let response = super::pages::refusal(request.request(), &refusal);
                request.into_response(response)
            } else {
                request.error_response(refusal)
            });
        }
    }
    next.call(request).await
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name is
/// case-insensitive (RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The caller a route needs (`None` for public routes, and for requests no route takes,
/// which are answered 404 or 405), or why the request is refused.
async fn admit(request: &ServiceRequest) -> Result<Option<Caller>, ApiError> {
    let Some(path) = request.match_pattern() else {
        return Ok(None);
    };
    let access = match policy(request.method(), &path) {
        Some(access) => access,
        None if all_routes().any(|route| route.path == path) => return Ok(None),
        None => {
            tracing::error!(path, "route has no access policy; refusing");
            return Err(ApiError::forbidden());
        }
    };
    let Access::Roles(allowed) = access else {
        return Ok(None);
    };
    let request_id = request
        .headers()
        .get(super::REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    let state = request
        .app_data::<web::Data<AppState>>()
        .expect("the application state is registered");
    let (caller, must_change_password) = match bearer_token(request.headers()) {
        Some(token) => {
            let token = token.to_owned();
            let (caller, standing) = state
                .run(move |s| async move {
                    // A bad signature or claim says no more than "unauthenticated"; a disabled
                    // user or a revoked token says which, so the person knows what to do.
                    s.auth
                        .admit(&token, request_id)
                        .await
                        .map_err(|refusal| match refusal {
                            AuthError::InvalidToken => ApiError::unauthenticated(),
                            other => other.into(),
                        })
                })
                .await?;
            (caller, standing.must_change_password)
        }
        // A browser session opens pages, and reads of the API from them (the live stream,
        // QR images). Never an API write: those need a bearer token, so a cross-site form
        // cannot move money with the cookie. The session is read with its user on every
        // request, so a disabled user or a changed password ends it at once.
        None if is_page(&path) || is_read(request.method()) => {
            let token = super::pages::session_token(request.request())
                .ok_or_else(ApiError::unauthenticated)?;
            let user = state
                .run(move |s| async move { s.web.session_user(&token).await })
                .await?
                .ok_or_else(ApiError::unauthenticated)?;
            let mut caller = Caller::from(&user);
            caller.request_id = request_id;
            (caller, user.must_change_password)
        }
        None => return Err(ApiError::unauthenticated()),
    };
    if must_change_password
        && !(request.method() == actix_web::http::Method::POST && path == OWN_PASSWORD_PATH)
    {
        return Err(AuthError::PasswordChangeRequired.into());
    }
    if !allowed.contains(&caller.role) {
        return Err(ApiError::forbidden());
    }
    Ok(Some(caller))
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}
