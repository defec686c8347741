//! Live payment notifications as Server-Sent Events: the vendor's phone sees "paid" seconds
//! after the customer's transfer lands.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::ApiPath;
use super::sse::{self, Event};
use super::AppState;
use crate::clock::to_datetime;
use crate::domain::number_words::{board_announcement, received_announcement, stall_label};
use crate::services::auth::Caller;
use crate::services::events::PaymentReceived;
use crate::services::web::board::BOARD_RECHECK;
use crate::services::ErrorEnvelope;
use crate::store::web::Credit;

/// A comment line this often keeps proxies and phone networks from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a client waits before reconnecting after the stream ends (the SSE `retry` field).
const CLIENT_RETRY: Duration = Duration::from_secs(3);
/// Asks nginx-style proxies not to buffer the stream.
const X_ACCEL_BUFFERING: &str = "x-accel-buffering";

/// The header an EventSource sends when it reconnects: the id of the last event it got.
const LAST_EVENT_ID: &str = "last-event-id";
/// Missed payments sent to a reconnecting client, at most.
const MAX_CATCH_UP: u32 = 500;

pub const PAYMENT_RECEIVED: &str = "payment_received";
pub const LAGGED: &str = "lagged";

/// What one open stream listens to.
struct Listening {
    /// The payee whose payments are sent; `None` for the market board, which hears them all.
    payee_id: Option<Uuid>,
    events: broadcast::Receiver<PaymentReceived>,
    gaps: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    /// When the caller's access token expires: the stream ends then, so a stream never
    /// outlives the token that opened it (the client reconnects with a fresh one).
    until: Option<Instant>,
    /// Payments already sent by the catch-up after `Last-Event-ID`: not sent twice when the
    /// live event for one arrives while the catch-up is read.
    caught_up: HashSet<Uuid>,
}

/// What a stream heard: a payment for it, or a frame to send as it is.
enum Heard {
    Payment(PaymentReceived),
    Frame(Event),
}

impl Listening {
    /// The next event for this stream, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        match self.heard().await? {
            Heard::Payment(event) => Some(payment_event(&event, event.bank_transaction_id)),
            Heard::Frame(frame) => Some(frame),
        }
    }

    /// The next payment for this stream (or a `lagged` notice), or `None` when it should end.
    /// Cancel-safe: a payment is taken off the channel only when it is returned.
    async fn heard(&mut self) -> Option<Heard> {
        let until = self.until;
        let token_expiry = async move {
            match until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(token_expiry);
        loop {
            tokio::select! {
                biased;
                // Shutting down (or the sender is gone): end the stream.
                _ = self.closing.wait_for(|closing| *closing) => return None,
                _ = &mut token_expiry => return None,
                received = self.events.recv() => match received {
                    Ok(event) if self.payee_id.is_none_or(|payee| payee == event.payee_id)
                        && !self.caught_up.contains(&event.bank_transaction_id) =>
                    {
                        return Some(Heard::Payment(event));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        return Some(Heard::Frame(lagged(
                            json!({ "reason": "slow_reader", "missed": missed }),
                        )))
                    }
                    Err(RecvError::Closed) => return None,
                },
                changed = self.gaps.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    return Some(Heard::Frame(lagged(json!({ "reason": "connection_lost" }))));
                }
            }
        }
    }
}

/// A payment as the stream sends it: the event, and the sentence the stall's phone says.
#[derive(Serialize)]
struct Announced<'a> {
    #[serde(flatten)]
    event: &'a PaymentReceived,
    announcement: String,
}

/// The event for a payment; `id` is what the client sends back as `Last-Event-ID`.
fn payment_event(event: &PaymentReceived, id: Uuid) -> Event {
    let announcement = match event.amount.parse::<u64>() {
        Ok(amount) => received_announcement(amount),
        Err(_) => String::new(),
    };
    let announced = Announced {
        event,
        announcement,
    };
    match Event::default()
        .event(PAYMENT_RECEIVED)
        .id(&id.to_string())
        .json_data(&announced)
    {
        Ok(sse) => sse,
        Err(e) => {
            tracing::warn!(error = %e, "payment event not serializable; skipped");
            lagged(json!({ "reason": "unreadable_event" }))
        }
    }
}

/// A credit read back from the ledger, as its live event was.
pub fn credit_event(credit: &Credit) -> PaymentReceived {
    PaymentReceived {
        payee_id: credit.payee_id,
        bank_transaction_id: credit.bank_transaction_id,
        payment_intent_id: credit.payment_intent_id,
        reference: credit.reference.clone(),
        amount: credit.amount.to_string(),
        status: None,
        occurred_at: to_datetime(credit.occurred_at).to_rfc3339(),
    }
}

/// A payment read back from the ledger for a reconnecting client: its id is the credit's, so
/// the next reconnection goes on after it (a suspense resolution is later than its transfer).
fn missed_event(credit: &Credit) -> Event {
    payment_event(&credit_event(credit), credit.credit_id)
}

/// Events may have been missed: the client should fetch the payee's intents again.
fn lagged(data: serde_json::Value) -> Event {
    Event::default().event(LAGGED).data(&data.to_string())
}

#[utoipa::path(get, path = "/v1/payees/{id}/events", tag = "payees", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200,
            description = "A Server-Sent Events stream that stays open. Event `payment_received`: \
                `id` is the bank transaction id, `data` a PaymentReceived JSON object plus \
                `announcement`, the sentence to say aloud in Vietnamese (\"Đã nhận năm mươi nghìn \
                đồng\"), sent within a second of the payment being recorded. A client that \
                reconnects with `Last-Event-ID` (the last id it saw) first gets the payments \
                recorded after it (at most 500), each once. Event `lagged`: events may have been missed \
                (`data` = {\"reason\": ..., \"missed\": n}); fetch the payee's payment intents again. \
                A comment line every 15 seconds keeps the connection open. The stream ends when the \
                access token expires or the service shuts down: reconnect with a valid token and \
                fetch the payee's payment intents again. Vendor and school users \
                may listen to their own payee only; staff and admins to any.",
            content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN (auditors)", body = ErrorEnvelope),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope)))]
pub async fn payee_events(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Subscribed before the check, so an event published while it runs is not missed.
    let mut listening = Listening {
        payee_id: Some(id),
        events: state.events.subscribe(),
        gaps: state.events.gaps(),
        closing: state.events.closing(),
        until: token_expiry(request.headers(), state.clock.now().timestamp()),
        caught_up: HashSet::new(),
    };
    // Unknown payees, and other payees for vendor and school users: 404.
    let user = caller.username.clone();
    let last_seen = last_event_id(request.headers());
    let missed = state
        .run(move |s| async move {
            s.payments.payee(&caller, id).await?;
            match last_seen {
                Some(last) => {
                    s.payments
                        .credits_after(&caller, id, last, MAX_CATCH_UP)
                        .await
                }
                None => Ok(Vec::new()),
            }
        })
        .await?;
    tracing::debug!(payee_id = %id, %user, missed = missed.len(), "event stream opened");
    listening.caught_up = missed.iter().map(|p| p.bank_transaction_id).collect();
    let catch_up: Vec<Event> = missed.iter().map(missed_event).collect();
    let mut response = sse::response(stream_of(catch_up, listening), KEEP_ALIVE);
    response.headers_mut().insert(
        header::HeaderName::from_static(X_ACCEL_BUFFERING),
        header::HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// The market board's frame for a payment: the stall and the amount, never the payer.
#[derive(Serialize)]
struct BoardAnnounced<'a> {
    bank_transaction_id: Uuid,
    stall: &'a str,
    amount: &'a str,
    /// What the board says aloud: "Quầy 12 đã nhận ba mươi lăm nghìn đồng".
    announcement: String,
    occurred_at: &'a str,
}

/// Sent to a board whose link was revoked, just before its stream ends.
pub const REVOKED: &str = "revoked";

/// The market board's stream: every payee's payments, each named by its stall, for as long
/// as the board's link stands.
struct BoardListening {
    listening: Listening,
    state: web::Data<AppState>,
    token: String,
    /// Stall labels by payee, read once each.
    stalls: HashMap<Uuid, String>,
    revocations: watch::Receiver<u64>,
    recheck: tokio::time::Interval,
    revoked: bool,
}

impl BoardListening {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.revoked {
                return None;
            }
            let heard = tokio::select! {
                biased;
                changed = self.revocations.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    None
                }
                _ = self.recheck.tick() => None,
                heard = self.listening.heard() => Some(heard?),
            };
            match heard {
                Some(Heard::Payment(payment)) => {
                    return Some(self.event(&payment, payment.bank_transaction_id).await)
                }
                Some(Heard::Frame(frame)) => return Some(frame),
                None if !self.link_stands().await => {
                    self.revoked = true;
                    return Some(Event::default().event(REVOKED).data("{}"));
                }
                None => continue,
            }
        }
    }

    /// False only once the link is known to be revoked (a failed check is tried again).
    async fn link_stands(&self) -> bool {
        let token = self.token.clone();
        let checked = self
            .state
            .run(move |s| async move { s.web.board_link(&token).await })
            .await;
        match checked {
            Ok(_) => true,
            Err(refused) => refused.status() != actix_web::http::StatusCode::NOT_FOUND,
        }
    }

    async fn stall(&mut self, payee_id: Uuid) -> String {
        if let Some(label) = self.stalls.get(&payee_id) {
            return label.clone();
        }
        let payee = self
            .state
            .run(move |s| async move { s.store.payee(payee_id).await })
            .await;
        match payee {
            Ok(Some(payee)) => {
                let label = stall_label(payee.details.stall.as_deref(), &payee.code);
                self.stalls.insert(payee_id, label.clone());
                label
            }
            // Not kept: read again for the next payment.
            _ => stall_label(None, "?"),
        }
    }

    async fn event(&mut self, payment: &PaymentReceived, id: Uuid) -> Event {
        let stall = self.stall(payment.payee_id).await;
        let announced = BoardAnnounced {
            bank_transaction_id: payment.bank_transaction_id,
            stall: &stall,
            amount: &payment.amount,
            announcement: payment
                .amount
                .parse::<u64>()
                .map(|amount| board_announcement(&stall, amount))
                .unwrap_or_default(),
            occurred_at: &payment.occurred_at,
        };
        Event::default()
            .event(PAYMENT_RECEIVED)
            .id(&id.to_string())
            .json_data(&announced)
            .unwrap_or_else(|_| lagged(json!({ "reason": "unreadable_event" })))
    }
}

/// `GET /app/board/{token}/events`: the market board's live stream, opened with the board
/// link's token (no login); after a reconnection with `Last-Event-ID` it first sends what
/// was credited since (at most 500). An unknown or revoked link: 404; revoking the link ends
/// an open stream with a `revoked` event.
pub async fn board_events(
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    let token = path.into_inner();
    let listening = Listening {
        payee_id: None,
        events: state.events.subscribe(),
        gaps: state.events.gaps(),
        closing: state.events.closing(),
        until: None,
        caught_up: HashSet::new(),
    };
    let mut recheck = tokio::time::interval(BOARD_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut board = BoardListening {
        listening,
        revocations: state.web.board_revocations(),
        state: state.clone(),
        token: token.clone(),
        stalls: HashMap::new(),
        recheck,
        revoked: false,
    };
    let last_seen = last_event_id(request.headers());
    let missed = state
        .run(move |s| async move {
            s.web.board_link(&token).await?;
            match last_seen {
                Some(last) => s.web.market_credits_after(last, MAX_CATCH_UP).await,
                None => Ok(Vec::new()),
            }
        })
        .await;
    let missed = match missed {
        Ok(missed) => missed,
        Err(refused) => return super::pages::refusal(&request, &refused),
    };
    board.listening.caught_up = missed.iter().map(|c| c.bank_transaction_id).collect();
    let mut catch_up = Vec::with_capacity(missed.len());
    for credit in &missed {
        catch_up.push(board.event(&credit_event(credit), credit.credit_id).await);
    }
    let hello = Event::default().comment("listening").retry(CLIENT_RETRY);
    let events = stream::once(async move { hello })
        .chain(stream::iter(catch_up))
        .chain(stream::unfold(board, |mut board| async move {
            let event = board.next().await?;
            Some((event, board))
        }));
    let mut response = sse::response(events, KEEP_ALIVE);
    response.headers_mut().insert(
        header::HeaderName::from_static(X_ACCEL_BUFFERING),
        header::HeaderValue::from_static("no"),
    );
    response
}

/// When the bearer token (already verified by the access policy layer) expires.
fn token_expiry(headers: &HeaderMap, now_seconds: i64) -> Option<Instant> {
    let token = super::policy::bearer_token(headers)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1)?)
        .ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&claims)
        .ok()?
        .get("exp")?
        .as_i64()?;
    let left = exp.saturating_sub(now_seconds).max(0);
    Some(Instant::now() + Duration::from_secs(left as u64))
}

/// The bank transaction id a reconnecting client saw last (the SSE `Last-Event-ID` header).
fn last_event_id(headers: &HeaderMap) -> Option<Uuid> {
    let text = headers.get(LAST_EVENT_ID)?.to_str().ok()?;
    Uuid::parse_str(text.trim()).ok()
}

fn stream_of(catch_up: Vec<Event>, listening: Listening) -> impl Stream<Item = Event> {
    // The first frame goes out at once, so the client knows it is listening.
    let hello = Event::default().comment("listening").retry(CLIENT_RETRY);
    stream::once(async move { hello })
        .chain(stream::iter(catch_up))
        .chain(stream::unfold(listening, |mut listening| async move {
            let event = listening.next().await?;
            Some((event, listening))
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(payee_id: Uuid) -> PaymentReceived {
        PaymentReceived {
            payee_id,
            bank_transaction_id: Uuid::now_v7(),
            payment_intent_id: None,
            reference: None,
            amount: "1000".into(),
            status: None,
            occurred_at: "2024-05-01T08:00:00Z".into(),
        }
    }

    /// The bytes an event goes out as.
    async fn wire(event: Event) -> String {
        String::from_utf8(event.into_bytes().to_vec()).unwrap()
    }

    /// The event name and JSON data of an event on the wire.
    async fn lagged_data(event: Event) -> (String, serde_json::Value) {
        let text = wire(event).await;
        let (head, data) = text.trim_end().split_once("\ndata: ").unwrap();
        (
            head.trim_start_matches("event: ").to_owned(),
            serde_json::from_str(data).unwrap(),
        )
    }

    struct Setup {
        sender: broadcast::Sender<PaymentReceived>,
        gaps: watch::Sender<u64>,
        closing: watch::Sender<bool>,
        listening: Listening,
    }

    fn setup(capacity: usize, payee_id: Uuid) -> Setup {
        let (sender, events) = broadcast::channel(capacity);
        let gaps = watch::Sender::new(0);
        let closing = watch::Sender::new(false);
        let listening = Listening {
            payee_id: Some(payee_id),
            events,
            gaps: gaps.subscribe(),
            closing: closing.subscribe(),
            until: None,
            caught_up: HashSet::new(),
        };
        Setup {
            sender,
            gaps,
            closing,
            listening,
        }
    }

    #[tokio::test]
    async fn only_the_payees_events_go_out_with_the_bank_transaction_as_id() {
        let payee = Uuid::now_v7();
        let mut s = setup(16, payee);
        let mine = payment(payee);
        s.sender.send(payment(Uuid::now_v7())).unwrap();
        s.sender.send(mine.clone()).unwrap();
        let text = wire(s.listening.next().await.unwrap()).await;
        let head = format!(
            "event: payment_received\nid: {}\ndata: ",
            mine.bank_transaction_id
        );
        let data = text.strip_prefix(&head).expect(&text).trim_end();
        let mut expected = serde_json::to_value(&mine).unwrap();
        expected["announcement"] = json!("Đã nhận một nghìn đồng");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(data).unwrap(),
            expected
        );
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_it_lagged_and_goes_on() {
        let payee = Uuid::now_v7();
        let mut s = setup(2, payee);
        for _ in 0..5 {
            s.sender.send(payment(payee)).unwrap();
        }
        let (name, data) = lagged_data(s.listening.next().await.unwrap()).await;
        assert_eq!(name, "lagged");
        assert_eq!(data, json!({"reason": "slow_reader", "missed": 3}));
        for _ in 0..2 {
            let text = wire(s.listening.next().await.unwrap()).await;
            assert!(text.starts_with("event: payment_received\n"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_lost_database_listener_is_reported_and_shutdown_ends_the_stream() {
        let mut s = setup(16, Uuid::now_v7());
        s.gaps.send_modify(|gaps| *gaps += 1);
        let (name, data) = lagged_data(s.listening.next().await.unwrap()).await;
        assert_eq!(name, "lagged");
        assert_eq!(data, json!({"reason": "connection_lost"}));
        s.closing.send_replace(true);
        assert!(s.listening.next().await.is_none());
    }

    #[test]
    fn the_expiry_is_read_from_the_bearer_token() {
        let claims = |exp: i64| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"sub": "x", "exp": exp}).to_string())
        };
        let headers = |token: String| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            headers
        };
        let now = chrono::Utc::now().timestamp();
        let until = token_expiry(
            &headers(format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", claims(now + 600))),
            now,
        )
        .unwrap();
        let left = until - Instant::now();
        assert!(
            left > Duration::from_secs(590) && left <= Duration::from_secs(600),
            "{left:?}"
        );
        let until = token_expiry(&headers(format!("h.{}.s", claims(now - 10))), now).unwrap();
        assert!(until <= Instant::now());
        assert!(token_expiry(&headers("no-dots".into()), now).is_none());
        assert!(token_expiry(&HeaderMap::new(), now).is_none());
    }

    #[tokio::test]
    async fn the_stream_ends_when_the_token_expires() {
        let mut s = setup(16, Uuid::now_v7());
        s.listening.until = Some(Instant::now() + Duration::from_millis(200));
        let started = Instant::now();
        assert!(s.listening.next().await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
