//! Provider test deliveries: the signed sample body a provider sends when a merchant registers
//! the webhook URL (payOS `confirm-webhook`) or presses a dashboard's "send test" button
//! (SePay "Gửi thử", Casso "Gọi thử"). They name no real transfer, so they must be answered 2xx
//! (payOS refuses to register a URL that does not) and never be recorded as money, whatever
//! account number they carry.
//!
//! Each provider sends its own published sample, recognised here by the fields no real transfer
//! can carry together:
//!
//! | provider | markers (all must match) | why no real transfer has them |
//! |---|---|---|
//! | payOS | `data.orderCode` 123, `data.description` `VQRIO123`, `data.reference` `TF230204212323` | the reference is the bank's id of one transfer, made in 2023 |
//! | SePay | `id` 92704 | SePay's own transaction id, a global counter long past it; SePay's docs use it in every sample |
//! | Casso v2 | `data.id` 0, `data.reference` `MA_GIAO_DICH_THU_NGHIEM` ("test transaction code") | Casso ids start at 1 |
//!
//! The account number, amount and time are not markers: the sample may carry the documented
//! `12345678` or one of our real account numbers, and it is a test either way. Casso's legacy v1 webhook and Standard Webhooks have no known test
//! sample; a Standard Webhooks ping is any `type` other than `bank_transaction`, already
//! acknowledged and ignored by [`super::parse`].
//!
//! [`recognise`] looks at the body only: call it after [`super::verify`] has accepted the
//! delivery, so that only the provider holding a configured secret can send a test.

use std::fmt;

use serde_json::Value;

use super::Provider;

/// payOS's documented webhook sample, which `confirm-webhook` sends to the URL being
/// registered.
pub const PAYOS_ORDER_CODE: u64 = 123;
pub const PAYOS_DESCRIPTION: &str = "VQRIO123";
pub const PAYOS_REFERENCE: &str = "TF230204212323";
/// The `id` of SePay's documented webhook sample.
pub const SEPAY_ID: u64 = 92704;
/// The `data.id` and `data.reference` of Casso's v2 test webhook.
pub const CASSO_ID: u64 = 0;
pub const CASSO_REFERENCE: &str = "MA_GIAO_DICH_THU_NGHIEM";

/// A verified delivery recognised as a provider's test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    pub provider: Provider,
    /// The id the sample carries (payOS `reference`, SePay `id`, Casso `id`), for the audit.
    pub sample_id: String,
    /// Which markers matched, in words, for staff and for the acknowledgement.
    pub markers: &'static str,
}

impl TestDelivery {
    /// The outcome a test delivery is stored with, beside `accepted` and the refusal codes.
    pub const OUTCOME: &'static str = "WEBHOOK_PROVIDER_TEST";
}

impl fmt::Display for TestDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} test delivery ({}); no money recorded",
            self.provider, self.markers
        )
    }
}

/// Whether `raw_body` is `provider`'s test sample. `None` for anything else, including a body
/// that is not JSON (the parser reports that).
pub fn recognise(provider: Provider, raw_body: &[u8]) -> Option<TestDelivery> {
    let body: Value = serde_json::from_slice(raw_body).ok()?;
    let (sample_id, markers) = match provider {
        Provider::PayOs => {
            let data = body.get("data")?;
            let matches = data.get("orderCode")?.as_u64() == Some(PAYOS_ORDER_CODE)
                && text(data, "description")? == PAYOS_DESCRIPTION
                && text(data, "reference")? == PAYOS_REFERENCE;
            matches.then_some((
                PAYOS_REFERENCE.to_owned(),
                "payOS webhook confirmation sample: orderCode 123, description VQRIO123, \
                 reference TF230204212323",
            ))?
        }
        Provider::SePay => {
            let matches = body.get("id")?.as_u64() == Some(SEPAY_ID);
            matches.then_some((SEPAY_ID.to_string(), "SePay documented sample: id 92704"))?
        }
        Provider::Casso => {
            let data = body.get("data")?;
            let matches = data.get("id")?.as_u64() == Some(CASSO_ID)
                && text(data, "reference")? == CASSO_REFERENCE;
            matches.then_some((
                CASSO_ID.to_string(),
                "Casso test webhook: id 0, reference MA_GIAO_DICH_THU_NGHIEM",
            ))?
        }
        Provider::Standard => return None,
    };
    Some(TestDelivery {
        provider,
        sample_id,
        markers,
    })
}

/// A string field, trimmed as the parser trims identifiers.
fn text<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get(name)?.as_str().map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::test_support::{compact, pretty, sample};
    use proptest::prelude::*;
    use serde_json::json;

    fn payos() -> Value {
        sample("payos", "payos-official-doc-sample")["body"].clone()
    }

    fn sepay() -> Value {
        sample("sepay", "sepay-doc-sample")["body"].clone()
    }

    fn casso() -> Value {
        sample("casso_v2", "casso-v2-signature-sample")["body"].clone()
    }

    fn recognised(provider: Provider, body: &Value) -> bool {
        recognise(provider, &compact(body)).is_some()
    }

    #[test]
    fn the_published_samples_are_test_deliveries() {
        let found = recognise(Provider::PayOs, &compact(&payos())).expect("payOS sample");
        assert_eq!(found.provider, Provider::PayOs);
        assert_eq!(found.sample_id, "TF230204212323");
        let found = recognise(Provider::SePay, &pretty(&sepay())).expect("SePay sample");
        assert_eq!(found.sample_id, "92704");
        let found = recognise(Provider::Casso, &compact(&casso())).expect("Casso sample");
        assert_eq!(found.sample_id, "0");
        assert!(found.to_string().contains("no money recorded"));
    }

    #[test]
    fn the_account_amount_and_time_do_not_matter() {
        let mut body = payos();
        body["data"]["accountNumber"] = json!("0123456789");
        body["data"]["amount"] = json!(150_000);
        body["data"]["transactionDateTime"] = json!("2026-11-29 16:00:00");
        assert!(recognised(Provider::PayOs, &body));
        let mut body = sepay();
        body["accountNumber"] = json!("0123456789");
        body["referenceCode"] = json!("FT24012345678");
        assert!(recognised(Provider::SePay, &body));
        let mut body = casso();
        body["data"]["accountNumber"] = json!("0123456789");
        body["data"]["amount"] = json!(-599_000);
        assert!(recognised(Provider::Casso, &body));
    }

    #[test]
    fn a_payos_transfer_is_a_test_only_with_every_marker() {
        for (field, value) in [
            ("orderCode", json!(124)),
            ("orderCode", json!("123")),
            ("description", json!("VQRIO124")),
            ("description", json!("CT DEN VQRIO123")),
            ("reference", json!("FT24061234567890")),
        ] {
            let mut body = payos();
            body["data"][field] = value.clone();
            assert!(!recognised(Provider::PayOs, &body), "{field} = {value}");
        }
        let mut body = payos();
        body["data"]
            .as_object_mut()
            .expect("object")
            .remove("reference");
        assert!(!recognised(Provider::PayOs, &body));
    }

    #[test]
    fn real_sepay_and_casso_transfers_are_not_tests() {
        for id in [json!(92705), json!("92704x"), json!(0)] {
            let mut body = sepay();
            body["id"] = id.clone();
            assert!(!recognised(Provider::SePay, &body), "id {id}");
        }
        for (field, value) in [
            ("id", json!(218_897)),
            ("reference", json!("FT24061234567890")),
        ] {
            let mut body = casso();
            body["data"][field] = value;
            assert!(!recognised(Provider::Casso, &body), "{field}");
        }
        let v1 = sample("casso_v1_legacy", "casso-v1-legacy")["body"].clone();
        assert!(!recognised(Provider::Casso, &v1));
    }

    #[test]
    fn markers_count_only_on_their_own_provider() {
        assert!(!recognised(Provider::SePay, &payos()));
        assert!(!recognised(Provider::Casso, &payos()));
        assert!(!recognised(Provider::PayOs, &casso()));
        assert!(!recognised(Provider::PayOs, &sepay()));
        for body in [payos(), sepay(), casso()] {
            assert!(!recognised(Provider::Standard, &body));
        }
    }

    proptest! {
        /// A provider's sample is a test exactly when every one of its markers is intact,
        /// whatever account, amount and other fields it carries.
        #[test]
        fn a_test_needs_every_marker_and_nothing_else(
            provider in prop_oneof![
                Just(Provider::PayOs),
                Just(Provider::SePay),
                Just(Provider::Casso),
            ],
            broken in proptest::collection::vec(any::<bool>(), 3),
            account in "[0-9]{6,14}",
            amount in 1i64..=1_000_000_000,
            other_id in 1u64..u64::MAX,
            other_text in "[A-Z0-9]{4,20}",
        ) {
            prop_assume!(![PAYOS_ORDER_CODE, SEPAY_ID].contains(&other_id));
            prop_assume!(![PAYOS_DESCRIPTION, PAYOS_REFERENCE, CASSO_REFERENCE]
                .contains(&other_text.as_str()));
            let (mut body, markers): (Value, &[(&str, Value)]) = match provider {
                Provider::PayOs => (payos(), &[
                    ("orderCode", json!(other_id)),
                    ("description", json!(other_text)),
                    ("reference", json!(other_text)),
                ]),
                Provider::SePay => (sepay(), &[("id", json!(other_id))]),
                _ => (casso(), &[
                    ("id", json!(other_id)),
                    ("reference", json!(other_text)),
                ]),
            };
            let fields = match provider {
                Provider::SePay => &mut body,
                _ => &mut body["data"],
            };
            fields["accountNumber"] = json!(account);
            fields[if provider == Provider::SePay { "transferAmount" } else { "amount" }] =
                json!(amount);
            for ((field, replacement), broken) in markers.iter().zip(&broken) {
                if *broken {
                    fields[*field] = replacement.clone();
                }
            }
            let intact = broken.iter().take(markers.len()).all(|b| !b);
            prop_assert_eq!(recognised(provider, &body), intact);
        }
    }

    #[test]
    fn bodies_that_are_not_samples_get_no_answer() {
        for provider in Provider::ALL {
            assert_eq!(recognise(provider, b"not json"), None);
            assert_eq!(recognise(provider, b"[]"), None);
            assert_eq!(recognise(provider, br#"{"data": "x"}"#), None);
        }
    }
}
