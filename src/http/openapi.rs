//! The API contract: every operation, generated from the handlers' annotations, with the
//! error answers the shared machinery gives every route (access policy, extractors, the
//! database) added in one place.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::OpenApi;

use actix_web::http::Method;

use super::policy::{self, Access};
use super::{
    bank_feed, board_links, events, imports, payers, payments, registry, routes,
    school_corrections, school_files, schools, statistics, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "market-ledger", description = "Payment ledger for a commune's cashless market: double-entry accounts and transactions, idempotent posting, invariant checks, payees with VietQR codes and payment intents, verified bank-feed webhooks matched and posted exactly once, suspense and reconciliation, and the commune's registry of hamlets, households and residents."),
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
        bank_feed::list_collection_accounts, bank_feed::set_feed, bank_feed::send_test_delivery, bank_feed::receive_webhook,
        bank_feed::list_test_deliveries,
        bank_feed::get_bank_transaction, bank_feed::list_unmatched, bank_feed::resolve_unmatched,
        bank_feed::list_discrepancies, bank_feed::import_statement,
        imports::import_residents, imports::import_survey,
        statistics::adoption, statistics::personal_data_access,
        registry::create_hamlet, registry::list_hamlets, registry::get_hamlet,
        registry::rename_hamlet, registry::merge_hamlet,
        registry::create_household, registry::list_households, registry::get_household,
        registry::update_household,
        registry::create_resident, registry::list_residents, registry::get_resident,
        registry::update_resident, registry::record_consent, registry::list_consents,
        payers::list_payer_accounts, payers::link_payer_account, payers::unlink_payer_account,
        payers::payer_account_audit, payers::register_resident_bank_account,
        payers::record_cash_payment, payers::list_cash_payments,
        schools::create_year, schools::list_years, schools::create_class, schools::list_classes,
        schools::create_pupil, schools::list_pupils, schools::import_roster, schools::get_pupil, schools::move_pupil, schools::pupil_statement,
        schools::create_fee_item, schools::list_fee_items, schools::enrol,
        schools::create_exemption, schools::create_run, schools::list_runs, schools::preview_run,
        schools::post_run, schools::run_status, schools::balances, schools::record_cash,
        schools::get_receipt, schools::receipt_html, schools::cancel_receipt,
        schools::create_parent_link, schools::revoke_parent_link, schools::parent_view,
        schools::household_payment_request,
        school_corrections::reverse_run, school_corrections::adjust_charge,
        school_corrections::refund_credit, school_corrections::create_household_link,
        school_corrections::revoke_household_link, school_corrections::household_parent_view,
        school_files::export_run_csv, school_files::export_run_xlsx, school_files::receipt_pdf,
        school_files::preview_reminders, school_files::send_reminders,
        payments::list_received_payments, payments::payee_summary,
        board_links::create_board_link, board_links::list_board_links,
        board_links::revoke_board_link,
        users::change_own_password, users::list_users, users::create_user, users::get_user,
        users::update_user, users::reset_password, users::audit_trail,
    ),
    components(schemas(crate::services::events::PaymentReceived)),
    modifiers(&BearerAuth, &SharedErrors, &UuidPattern, &CallerRoles),
    tags((name = "operations"), (name = "auth"), (name = "ledger"), (name = "payees"),
        (name = "payment intents"), (name = "bank feed"), (name = "reconciliation"),
        (name = "payers"), (name = "registry"), (name = "statistics"), (name = "schools"),
        (name = "users"))
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

/// The answers every route can give through the machinery it shares, so a client (and a
/// contract fuzzer) finds each status it can meet documented on the route itself. A route's
/// own description of a status is kept.
struct SharedErrors;

impl utoipa::Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, _, operation) in operations(openapi) {
            add_shared_errors(path, operation);
            describe_cursor(operation);
        }
    }
}

fn add_shared_errors(path: &str, operation: &mut Operation) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let takes = |place: ParameterIn| {
        parameters
            .iter()
            .any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&place))
    };
    let idempotent = parameters.iter().any(|p| p.name == "Idempotency-Key");
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if secured {
        shared.push((
            "401",
            "UNAUTHENTICATED: no valid access token; USER_DISABLED; TOKEN_REVOKED: issued before the password changed",
        ));
        shared.push((
            "403",
            "FORBIDDEN: the caller's role may not call this route; PASSWORD_CHANGE_REQUIRED: the password was reset and must be changed first",
        ));
    }
    if takes(ParameterIn::Path) {
        shared.push((
            "400",
            "INVALID_PATH, NUL_CHARACTER: a path parameter cannot be read",
        ));
        shared.push((
            "404",
            "the resource does not exist (or is not the caller's)",
        ));
    }
    if takes(ParameterIn::Query) {
        shared.push((
            "400",
            "INVALID_QUERY, INVALID_CURSOR, INVALID_LIMIT: a query parameter cannot be read",
        ));
    }
    if idempotent {
        shared.push((
            "400",
            "IDEMPOTENCY_KEY_REQUIRED, INVALID_IDEMPOTENCY_KEY: the Idempotency-Key header is missing or not 1 to 255 visible ASCII characters",
        ));
        shared.push((
            "409",
            "IDEMPOTENCY_KEY_IN_PROGRESS: the first request with this key is still running",
        ));
        shared.push((
            "422",
            "IDEMPOTENCY_KEY_REUSED: the key was used with another request",
        ));
    }
    if let Some(body) = &operation.request_body {
        shared.push(("400", "BODY_UNREADABLE: the body could not be received"));
        shared.push((
            "413",
            "PAYLOAD_TOO_LARGE: the body is over this route's limit",
        ));
        if is_typed_json(body) {
            shared.push((
                "400",
                "MALFORMED_JSON, NUL_CHARACTER: the body is not valid JSON",
            ));
            shared.push((
                "415",
                "UNSUPPORTED_MEDIA_TYPE: the body is not sent as JSON",
            ));
            shared.push((
                "422",
                "INVALID_BODY: the body does not have the documented shape",
            ));
        }
    }
    if path.starts_with("/v1/") {
        shared.push((
            "503",
            "the database is briefly unavailable or busy (`details.retryable`); retry later",
        ));
    }
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    }
}

/// A `format: uuid` is only advisory in JSON Schema, so a client (or a fuzzer) may send ""
/// where the service reads a UUID and refuses anything else: every UUID states its shape.
struct UuidPattern;

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

impl utoipa::Modify for UuidPattern {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(pattern_uuids);
        }
        for (_, _, operation) in operations(openapi) {
            for parameter in operation.parameters.iter_mut().flatten() {
                parameter.schema.iter_mut().for_each(pattern_uuids);
            }
            let bodies = operation.request_body.iter_mut();
            for content in bodies.flat_map(|body| body.content.values_mut()) {
                content.schema.iter_mut().for_each(pattern_uuids);
            }
        }
    }
}

/// Who may call each route, as the access policy the service enforces says (`x-roles`; a
/// public route has none), so a client need not learn it from a 403, and the contract fuzzer
/// can check that every other role is refused.
struct CallerRoles;

impl utoipa::Modify for CallerRoles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, method, operation) in operations(openapi) {
            if let Some(Access::Roles(roles)) = policy::policy(&method, path) {
                let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
                operation
                    .extensions
                    .get_or_insert_with(Default::default)
                    .insert("x-roles".to_owned(), roles.into());
            }
        }
    }
}

/// Every operation of the document, with its path and method.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&String, Method, &mut Operation)> {
    openapi.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ]
        .into_iter()
        .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
        .map(move |(method, operation)| (path, method, operation))
    })
}

fn pattern_uuids(schema: &mut RefOr<Schema>) {
    use utoipa::openapi::schema::{ArrayItems, KnownFormat, SchemaFormat};
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            if object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))
                && object.pattern.is_none()
            {
                object.pattern = Some(UUID_PATTERN.to_owned());
            }
            object.properties.values_mut().for_each(pattern_uuids);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                pattern_uuids(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(pattern_uuids),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(pattern_uuids),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(pattern_uuids),
        _ => {}
    }
}

/// Every list reads its `cursor` the same way (the paging service), so its shape is stated
/// once: URL-safe base64 without padding, as the previous page's `next_cursor` gave it.
fn describe_cursor(operation: &mut Operation) {
    let cursor = operation
        .parameters
        .iter_mut()
        .flatten()
        .find(|p| p.name == "cursor" && matches!(p.parameter_in, ParameterIn::Query));
    if let Some(cursor) = cursor {
        cursor.description = Some(
            "the `next_cursor` of the previous page, exactly as this API returned it".to_owned(),
        );
        cursor.schema = Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .pattern(Some("^[A-Za-z0-9_-]+$"))
                .into(),
        );
    }
}

/// A JSON body the service parses; routes that take raw bytes (signed webhooks, CSV
/// statements) take any media type and document the body as a string.
fn is_typed_json(body: &RequestBody) -> bool {
    let schema = body
        .content
        .get("application/json")
        .and_then(|content| content.schema.as_ref());
    match schema {
        None => false,
        Some(RefOr::T(Schema::Object(object))) => {
            object.schema_type != SchemaType::Type(Type::String)
        }
        Some(_) => true,
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build(),
    )
}

/// The committed contract, `api-spec/openapi.yaml`.
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}
