//! Plain-HTTP requests (spec §"Plain HTTP Transport").
//!
//! Each agent has a session keyed by its instance UID that lasts across polls: its protocol
//! state, its pending message (delivered with the reply to the next poll) and its callbacks.
//! `on_connected` runs when a session starts; it ends with `agent_disconnect`, silence (the
//! sweeper), [`crate::Connection::disconnect`] or shutdown.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode, header};
use http_body::Body;
use prost::Message;

use opamp_proto::{AgentToServer, Bytes, InstanceUid, ServerToAgent};
use opamp_transport::codec::http::headers_accept_gzip;
use opamp_transport::codec::{INSTANCE_UID_HEADER_NAME, TransportKind};
use opamp_transport::http::{error_response, error_response_for, protobuf_response, read_request};

use super::process::process_message;
use super::{BoxError, ResponseBody, admit, at_capacity};
use crate::Error;
use crate::callbacks::CloseReason;
use crate::server::Shared;
use crate::state::bad_request;

/// Answers one plain-HTTP request.
pub(super) async fn handle<B>(
    shared: Arc<Shared>,
    request: Request<B>,
    remote: Option<SocketAddr>,
) -> Response<ResponseBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let (_guard, callbacks) = match admit(&shared, &parts, remote, TransportKind::PlainHttp).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let accept_gzip = headers_accept_gzip(&parts.headers);
    let header_uid = parts
        .headers
        .get(&INSTANCE_UID_HEADER_NAME)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| InstanceUid::from_str(v).ok());

    let msg =
        match read_request::<AgentToServer, _>(Request::from_parts(parts, body), &shared.limits)
            .await
        {
            Ok((_, msg)) => msg,
            Err(err) => return read_failed(&shared, header_uid, err, accept_gzip).await,
        };
    let Ok(uid) = InstanceUid::try_from(msg.instance_uid.as_ref()) else {
        let err = Error::InvalidInstanceUid {
            len: msg.instance_uid.len(),
        };
        tracing::debug!(%err, "plain-HTTP request with a bad instance_uid");
        return bad_request_response(&shared, msg.instance_uid.clone(), &err, accept_gzip);
    };

    // The agent's session; a session that ended meanwhile is replaced by a new one.
    let mut msg = Some(msg);
    for _ in 0..2 {
        let Some((conn, is_new)) = shared.http_session(uid, remote, Arc::clone(&callbacks)) else {
            return at_capacity(&shared);
        };
        let _serial = conn.inner.serial.lock().await;
        if conn.is_closed() {
            continue;
        }
        if is_new {
            tracing::debug!(conn = conn.id(), %uid, remote = ?remote, "plain-HTTP session started");
            conn.inner.callbacks.on_connected(&conn).await;
        }
        let Some(msg) = msg.take() else { break };
        let processed = process_message(&shared, &conn, Box::new(msg), Instant::now()).await;
        let mut response = reply(&shared, &conn, processed.reply.into_message(), accept_gzip).await;
        if processed.rejected_duplicate {
            *response.status_mut() = StatusCode::CONFLICT;
        }
        let close = processed.close.or_else(|| {
            processed
                .unregistered
                .then_some(CloseReason::DuplicateInstanceUid)
        });
        if let Some(reason) = close {
            shared.remove(&conn);
            conn.finish(reason).await;
        }
        return response;
    }
    error_response(StatusCode::SERVICE_UNAVAILABLE, None)
}

/// The response carrying `msg`, gzip-compressed when the agent accepts it and the message is
/// worth it. A message over the size limit is not sent (spec §"Plain HTTP Message Size
/// Limits"): the agent gets an error response instead and the drop is reported.
async fn reply(
    shared: &Shared,
    conn: &crate::Connection,
    msg: Box<ServerToAgent>,
    accept_gzip: bool,
) -> Response<ResponseBody> {
    let gzip = accept_gzip && msg.encoded_len() >= shared.settings.gzip_min_size;
    match protobuf_response(&msg, gzip, &shared.limits) {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(conn = conn.id(), %err, "dropping a response over the size limit");
            let err = Error::Transport(err);
            conn.inner
                .callbacks
                .on_message_response_error(conn, &msg, &err)
                .await;
            let fallback = ServerToAgent {
                instance_uid: msg.instance_uid.clone(),
                error_response: Some(opamp_proto::ServerErrorResponse {
                    r#type: opamp_proto::ServerErrorResponseType::Unknown as i32,
                    error_message: "the response exceeded the message size limit".into(),
                    details: None,
                }),
                ..Default::default()
            };
            protobuf_response(&fallback, false, &shared.limits)
                .unwrap_or_else(|_| error_response(StatusCode::INTERNAL_SERVER_ERROR, None))
        }
    }
}

/// The body could not be read or decoded: 413 / 415 / 400 (with a `BAD_REQUEST` body for a
/// malformed message, spec §"Bad Request").
async fn read_failed(
    shared: &Shared,
    header_uid: Option<InstanceUid>,
    err: opamp_transport::Error,
    accept_gzip: bool,
) -> Response<ResponseBody> {
    tracing::debug!(%err, "unusable plain-HTTP request body");
    let malformed = matches!(
        err,
        opamp_transport::Error::Decode(_) | opamp_transport::Error::InvalidGzip(_)
    );
    let mut response = if malformed {
        let uid = header_uid.map(|u| u.to_bytes()).unwrap_or_default();
        let mut r = bad_request_response(shared, uid, &err, accept_gzip);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    } else {
        error_response_for(&err)
    };
    if err.is_too_large() {
        // The agent must not retry (spec §"Plain HTTP Message Size Limits").
        response
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    if let Some(conn) = header_uid.and_then(|uid| shared.lookup(&uid))
        && conn.transport() == TransportKind::PlainHttp
    {
        let err = Error::Transport(err);
        let _serial = conn.inner.serial.lock().await;
        if !conn.is_closed() {
            conn.inner
                .callbacks
                .on_read_message_error(&conn, &err)
                .await;
        }
    }
    response
}

fn bad_request_response(
    shared: &Shared,
    uid: Bytes,
    err: &dyn std::fmt::Display,
    accept_gzip: bool,
) -> Response<ResponseBody> {
    let msg = bad_request(uid, err.to_string());
    let mut response = protobuf_response(
        &msg,
        accept_gzip && msg.encoded_len() >= shared.settings.gzip_min_size,
        &shared.limits,
    )
    .unwrap_or_else(|_| error_response(StatusCode::BAD_REQUEST, None));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
