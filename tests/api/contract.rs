//! The committed API contract matches the code, and every documented route has an access policy.

use market_ledger::http::openapi_yaml;
use market_ledger::http::policy::ROUTES;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/openapi.yaml");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = openapi_yaml();
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(SPEC_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SPEC_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "api-spec/openapi.yaml is out of date: run `cargo run -- openapi > api-spec/openapi.yaml` \
         (or UPDATE_OPENAPI=1 cargo test committed_openapi) and commit it"
    );
}

#[test]
fn every_documented_operation_has_a_policy_and_back() {
    let spec: serde_json::Value =
        serde_json::to_value(<market_ledger::http::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut policed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    documented.sort();
    policed.sort();
    assert_eq!(documented, policed);
}

/// The check every test's answers go through refuses what the contract does not allow.
#[test]
fn answers_outside_the_contract_are_caught() {
    use crate::common::assert_documented;
    use reqwest::StatusCode;
    use serde_json::json;
    let envelope = json!({"error": {"code": "X", "message": "m"}});
    assert_documented("/v1/accounts", StatusCode::UNAUTHORIZED, Some(&envelope));
    let refused = |path: &'static str, status: StatusCode, body: serde_json::Value| {
        std::panic::catch_unwind(move || assert_documented(path, status, Some(&body))).is_err()
    };
    assert!(refused("/v1/accounts", StatusCode::OK, json!({"data": 5})));
    assert!(refused(
        "/v1/accounts",
        StatusCode::IM_A_TEAPOT,
        envelope.clone()
    ));
    assert!(refused(
        "/v1/transactions/batch",
        StatusCode::OK,
        json!({"posted": "many"})
    ));
    assert!(refused("/healthz", StatusCode::OK, json!({"state": "ok"})));
}

const README_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const ROLES_BEGIN: &str =
    "<!-- role table: generated from src/http/policy.rs by tests/api/contract.rs -->\n";
const ROLES_END: &str = "<!-- end of role table -->\n";

/// The README's role table, rendered from the policy table: one line per route.
fn role_table() -> String {
    use market_ledger::domain::user::Role;
    use market_ledger::http::policy::Access;
    let mut table = String::from(
        "| Route | admin | staff | auditor | vendor | school |\n|---|:-:|:-:|:-:|:-:|:-:|\n",
    );
    for route in ROUTES {
        let cells: Vec<&str> = Role::ALL
            .iter()
            .map(|role| match route.access {
                Access::Public => "anyone",
                Access::Roles(allowed) if allowed.contains(role) => "✓",
                Access::Roles(_) => "",
            })
            .collect();
        table.push_str(&format!(
            "| `{} {}` | {} |\n",
            route.method,
            route.path,
            cells.join(" | ")
        ));
    }
    table
}

#[test]
fn the_readme_role_table_is_the_policy_table() {
    let readme = std::fs::read_to_string(README_PATH).unwrap();
    let (Some(begin), Some(end)) = (readme.find(ROLES_BEGIN), readme.find(ROLES_END)) else {
        panic!("README.md lacks the role table markers");
    };
    let generated = role_table();
    let committed = &readme[begin + ROLES_BEGIN.len()..end];
    if committed != generated && std::env::var("UPDATE_README").is_ok() {
        let updated = format!(
            "{}{generated}{}",
            &readme[..begin + ROLES_BEGIN.len()],
            &readme[end..]
        );
        std::fs::write(README_PATH, updated).unwrap();
        return;
    }
    assert!(
        committed == generated,
        "README.md's role table differs from src/http/policy.rs: run \
         `UPDATE_README=1 cargo test --test api the_readme_role_table` and commit it"
    );
}
