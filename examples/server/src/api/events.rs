//! `/api/events`: Server-Sent Events announcing changes, so the dashboard updates without a
//! reload. A client that falls behind gets a `resync` event instead of the ones it missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;

pub(crate) async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.fleet.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(e) => SseEvent::default()
                .event(e.kind)
                .data(serde_json::json!({ "kind": e.kind, "id": e.id }).to_string()),
            Err(RecvError::Lagged(_)) => SseEvent::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
