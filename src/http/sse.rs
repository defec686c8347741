//! Server-Sent Events on the wire (the WHATWG `text/event-stream` format): frames, the
//! keep-alive comment an idle stream sends, and the streaming response.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures::stream::{self, Stream, StreamExt};

/// What an idle stream sends: an empty comment, which every client ignores.
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";

/// One frame, built field by field; `into_bytes` ends it with the blank line.
#[derive(Debug, Clone, Default)]
pub struct Event {
    frame: String,
}

impl Event {
    /// Field values cannot hold line breaks (they would end the field); data can, as lines.
    fn field(mut self, name: &str, value: &str) -> Self {
        debug_assert!(!value.contains(['\r', '\n']), "SSE field with a line break");
        let _ = writeln!(self.frame, "{name}: {value}");
        self
    }

    pub fn event(self, name: &str) -> Self {
        self.field("event", name)
    }

    pub fn id(self, id: &str) -> Self {
        self.field("id", id)
    }

    pub fn comment(self, text: &str) -> Self {
        self.field("", text)
    }

    pub fn data(mut self, data: &str) -> Self {
        for line in data.split(['\r', '\n']) {
            self = self.field("data", line);
        }
        self
    }

    pub fn json_data(self, data: &impl serde::Serialize) -> serde_json::Result<Self> {
        Ok(self.data(&serde_json::to_string(data)?))
    }

    /// How long the client waits before it reconnects.
    pub fn retry(self, wait: Duration) -> Self {
        self.field("retry", &wait.as_millis().to_string())
    }

    pub fn into_bytes(self) -> Bytes {
        let mut frame = self.frame;
        frame.push('\n');
        Bytes::from(frame)
    }
}

/// The events as a response that stays open, with a keep-alive comment after every
/// `keep_alive` without an event (so proxies and phone networks keep the connection).
pub fn response(events: impl Stream<Item = Event> + 'static, keep_alive: Duration) -> HttpResponse {
    let frames = stream::unfold(Box::pin(events), move |mut events| async move {
        // The event stream keeps its own state across a timed-out `next`, so nothing is lost.
        let frame = match tokio::time::timeout(keep_alive, events.next()).await {
            Ok(Some(event)) => event.into_bytes(),
            Ok(None) => return None,
            Err(_) => Bytes::from_static(KEEP_ALIVE_FRAME),
        };
        Some((Ok::<_, Infallible>(frame), events))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_field_by_field_and_end_with_a_blank_line() {
        let frame = Event::default()
            .comment("listening")
            .retry(Duration::from_secs(3));
        assert_eq!(&frame.into_bytes()[..], b": listening\nretry: 3000\n\n");
        let frame = Event::default().event("x").id("1").data("a\nb");
        assert_eq!(
            &frame.into_bytes()[..],
            b"event: x\nid: 1\ndata: a\ndata: b\n\n"
        );
    }

    #[tokio::test]
    async fn an_idle_stream_sends_keep_alive_comments_and_events_in_between() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let mut body = response(tokio_stream_of(receiver), Duration::from_millis(50)).into_body();
        assert_eq!(next_frame(&mut body).await.unwrap(), KEEP_ALIVE_FRAME);
        sender.send(Event::default().event("paid")).unwrap();
        assert_eq!(next_frame(&mut body).await.unwrap(), "event: paid\n\n");
        drop(sender);
        assert!(next_frame(&mut body).await.is_none());
    }

    async fn next_frame(body: &mut actix_web::body::BoxBody) -> Option<Bytes> {
        use actix_web::body::MessageBody;
        futures::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_next(cx))
            .await
            .map(|frame| frame.expect("frames are infallible"))
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::UnboundedReceiver<Event>,
    ) -> impl Stream<Item = Event> {
        stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
