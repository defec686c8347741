//! How a reminder leaves the service: written to the log (the default, for a school that
//! sends its messages by hand), or POSTed as signed JSON to the SMS or Zalo gateway the school
//! configures. Not `store::notifier`, which carries the service's own events between
//! instances.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

/// The header carrying `sha256=<hex HMAC-SHA256(secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "X-Reminder-Signature";
/// The header carrying the message id (also in the body), for a gateway's duplicate check.
pub const MESSAGE_ID_HEADER: &str = "X-Reminder-Id";

/// One message to one household or guardian, as the gateway receives it (JSON).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderMessage {
    /// The same charges on the same day give the same id: a gateway that got a message whose
    /// answer was lost may drop the repeat.
    pub message_id: String,
    pub school_id: Uuid,
    pub school_name: String,
    pub run_id: Uuid,
    /// The Vietnam calendar day of the reminder.
    pub day: chrono::NaiveDate,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    /// The message in Vietnamese (NFC).
    pub text: String,
    pub pupils: Vec<ReminderPupil>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReminderPupil {
    pub pupil_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub class_name: String,
    /// Đồng still owed on the run.
    pub owed: i64,
    /// The transfer memo that pays the pupil's run, if the run made a QR for the pupil.
    pub payment_reference: Option<String>,
    /// The pupil's VietQR payload (EMV text), for a gateway that sends the QR as a picture.
    pub qr_payload: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the gateway could not be reached: {0}")]
    Unreachable(String),
    #[error("the gateway answered {0}")]
    Refused(u16),
}

#[async_trait]
pub trait ReminderSender: Send + Sync {
    /// `log` or `http`: recorded with every reminder sent.
    fn kind(&self) -> &'static str;
    async fn send(&self, message: &ReminderMessage) -> Result<(), SendError>;
}

/// Writes each message to the service's log (target `reminders`).
pub struct LogSender;

#[async_trait]
impl ReminderSender for LogSender {
    fn kind(&self) -> &'static str {
        "log"
    }

    async fn send(&self, message: &ReminderMessage) -> Result<(), SendError> {
        tracing::info!(
            target: "reminders",
            message_id = %message.message_id,
            school_id = %message.school_id,
            phone = message.guardian_phone.as_deref().unwrap_or(""),
            text = %message.text,
            "reminder"
        );
        Ok(())
    }
}

/// POSTs each message as JSON, signed, to the school's gateway; any 2xx answer is delivered.
pub struct HttpSender {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl HttpSender {
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            url: url.to_owned(),
            secret: secret.as_bytes().to_vec(),
        })
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl ReminderSender for HttpSender {
    fn kind(&self) -> &'static str {
        "http"
    }

    async fn send(&self, message: &ReminderMessage) -> Result<(), SendError> {
        let body = serde_json::to_vec(message).expect("messages serialize");
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, &body))
            .header(MESSAGE_ID_HEADER, &message.message_id)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Unreachable(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SendError::Refused(response.status().as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
