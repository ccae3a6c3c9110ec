//! Size limits on real sockets, in both directions (spec §"WebSocket Message Size Limits",
//! §"Plain HTTP Message Size Limits"), with a 1 MiB limit.
//!
//! * WebSocket: a receiver refuses a message over the limit, closing with 1009 (Message Too
//!   Big), on the client and on the server; a sender refuses to send one; a message of exactly
//!   the limit passes.
//! * HTTP: a request body over the server's limit gets 413 (identity and gzip); a response over
//!   the client's limit is discarded with `MessageTooLarge` (identity and gzip).

mod io_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use hyper::body::Incoming;
use io_support::{
    LIMIT, TestServer, accept_ws, agent_message, custom_message, echo_session, limits, within,
    ws_config,
};
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::Limits;
use opamp_transport::codec::http::{ContentEncoding, headers_accept_gzip};
use opamp_transport::codec::ws::encoded_ws_message_len;
use opamp_transport::http::{
    HttpClient, HttpClientSettings, HttpRequestOptions, error_response_for, protobuf_response,
    read_request,
};
use opamp_transport::ws::{self, CloseCode, WsConnectOptions};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as RawMessage;

fn big_limits() -> Limits {
    Limits::default().with_max_message_size(4 * LIMIT)
}

/// An `AgentToServer` whose WebSocket encoding (header included) is exactly `size` bytes.
fn agent_message_of_ws_size(size: usize) -> AgentToServer {
    let mut message = agent_message(1);
    let mut data_len = size - 64;
    loop {
        message.custom_message = Some(custom_message(data_len));
        let len = encoded_ws_message_len(&message);
        if len == size {
            return message;
        }
        // Field lengths are varints: adjust one byte at a time near the target.
        data_len = if len < size {
            data_len + 1
        } else {
            data_len - 1
        };
    }
}

#[tokio::test]
async fn client_refuses_an_oversize_message_and_closes_with_1009() {
    let (close_tx, close_rx) = oneshot::channel();
    let close_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(close_tx)));
    let server = TestServer::plain(move |request: Request<Incoming>| {
        let close_tx = close_tx.clone();
        async move {
            // The server may send up to 4 MiB; its close reply must not wait long behind the
            // big message the client stopped reading.
            let config = ws_config()
                .with_limits(big_limits())
                .with_close_timeout(Duration::from_millis(500));
            accept_ws(request, config, move |connection| async move {
                let (mut sender, mut receiver) = connection.split();
                tokio::spawn(async move {
                    let push = ServerToAgent {
                        custom_message: Some(custom_message(2 * LIMIT)),
                        ..Default::default()
                    };
                    // May stay blocked: the client stops reading after the frame header.
                    let _ = sender.send(&push).await;
                    // Keep the connection open until the test ends.
                    std::future::pending::<()>().await;
                });
                let end = receiver.recv::<AgentToServer>().await;
                let code = receiver.peer_close_frame().map(|frame| frame.code);
                if let Some(tx) = close_tx.lock().unwrap().take() {
                    let _ = tx.send((end.map(|m| m.is_none()), code));
                }
            })
        }
    })
    .await;

    let (mut connection, _) = within(ws::connect(
        &server.url("ws"),
        &WsConnectOptions::default().with_config(ws_config()),
    ))
    .await
    .expect("connect");
    match within(connection.recv::<ServerToAgent>()).await {
        Err(Error::MessageTooLarge { size, limit }) => {
            assert_eq!(limit, LIMIT as u64);
            assert!(size > LIMIT as u64);
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert!(matches!(
        within(connection.recv::<ServerToAgent>()).await,
        Err(Error::ConnectionClosed)
    ));

    // The server saw a close frame with 1009 (the client connection is still open here, so
    // nothing resets the socket before the server reads it).
    let (ended, code) = within(close_rx).await.expect("server report");
    assert!(matches!(ended, Ok(true)), "server recv: {ended:?}");
    assert_eq!(code, Some(CloseCode::Size));
    drop(connection);
}

#[tokio::test]
async fn sender_refuses_oversize_and_the_limit_itself_passes() {
    let server =
        TestServer::plain(|request| async move { accept_ws(request, ws_config(), echo_session) })
            .await;
    let (mut connection, _) = within(ws::connect(
        &server.url("ws"),
        &WsConnectOptions::default().with_config(ws_config()),
    ))
    .await
    .expect("connect");

    let over = agent_message_of_ws_size(LIMIT + 1);
    match within(connection.send(&over)).await {
        Err(Error::MessageTooLarge { size, limit }) => {
            assert_eq!((size, limit), (LIMIT as u64 + 1, LIMIT as u64));
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }

    // Nothing was sent: the connection still works, and a message of exactly the limit is
    // accepted by both sides.
    let exact = agent_message_of_ws_size(LIMIT);
    within(connection.send(&exact))
        .await
        .expect("send at the limit");
    let reply: ServerToAgent = within(connection.recv()).await.unwrap().unwrap();
    assert_eq!(reply.flags, exact.sequence_num);
}

#[tokio::test]
async fn server_refuses_an_oversize_message_and_closes_with_1009() {
    let (result_tx, result_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let slots = std::sync::Arc::new(std::sync::Mutex::new(Some((result_tx, done_rx))));
    let server = TestServer::plain(move |request: Request<Incoming>| {
        let slots = slots.clone();
        async move {
            accept_ws(request, ws_config(), move |mut connection| async move {
                let Some((result_tx, done_rx)) = slots.lock().unwrap().take() else {
                    return;
                };
                let result = connection.recv::<AgentToServer>().await;
                let _ = result_tx.send(result.map(|m| m.is_some()));
                // Stay open until the peer has read the close frame.
                let _ = done_rx.await;
            })
        }
    })
    .await;

    // A raw tungstenite peer with no limit of its own.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (raw, _) = within(tokio_tungstenite::client_async(server.url("ws"), tcp))
        .await
        .expect("raw handshake");
    let (mut raw_tx, mut raw_rx) = raw.split();
    tokio::spawn(async move {
        let mut payload = vec![0u8; 2 * LIMIT];
        payload[0] = 0; // a valid OpAMP header; only the size is wrong
        let _ = raw_tx.send(RawMessage::Binary(payload.into())).await;
        std::future::pending::<()>().await;
    });

    match within(result_rx).await.expect("server result") {
        Err(Error::MessageTooLarge { limit, .. }) => assert_eq!(limit, LIMIT as u64),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    let close = loop {
        match within(raw_rx.next()).await {
            Some(Ok(RawMessage::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.expect("close frame").code, CloseCode::Size);
    let _ = done_tx.send(());
}

/// A plain-HTTP endpoint with the 1 MiB limit that answers with a message of the size the
/// path names (`/reply/<bytes>`), encoded with a 4 MiB limit.
async fn http_server() -> TestServer {
    TestServer::plain(|request: Request<Incoming>| async move {
        let reply_size: usize = request
            .uri()
            .path()
            .strip_prefix("/reply/")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let accept_gzip = headers_accept_gzip(request.headers());
        match read_request::<AgentToServer, _>(request, &limits()).await {
            Ok(_) => {
                let reply = ServerToAgent {
                    custom_message: Some(custom_message(reply_size)),
                    ..Default::default()
                };
                protobuf_response(&reply, accept_gzip, &big_limits()).unwrap()
            }
            Err(err) => error_response_for(&err),
        }
    })
    .await
}

#[tokio::test]
async fn http_request_over_the_server_limit_gets_413() {
    let server = http_server().await;
    let client = HttpClient::new(&HttpClientSettings::default());
    let mut request = agent_message(1);
    request.custom_message = Some(custom_message(2 * LIMIT));
    for compression in [ContentEncoding::Identity, ContentEncoding::Gzip] {
        let options = HttpRequestOptions::default()
            .with_limits(big_limits())
            .with_compression(compression);
        let result =
            within(client.round_trip::<_, ServerToAgent>(&server.url("http"), &request, &options))
                .await;
        match result {
            Err(Error::HttpStatus { status, .. }) => {
                assert_eq!(
                    status,
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "{compression:?}"
                )
            }
            other => panic!("{compression:?}: expected 413, got {other:?}"),
        }
    }
    // The client itself refuses to send over its own limit.
    let options = HttpRequestOptions::default().with_limits(limits());
    let result = client
        .round_trip::<_, ServerToAgent>(&server.url("http"), &request, &options)
        .await;
    assert!(
        matches!(result, Err(Error::MessageTooLarge { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn http_response_over_the_client_limit_is_discarded() {
    let server = http_server().await;
    let client = HttpClient::new(&HttpClientSettings::default());
    let url = format!("http://{}/reply/{}", server.addr, 2 * LIMIT);
    for accept_gzip in [false, true] {
        let options = HttpRequestOptions::default()
            .with_limits(limits())
            .with_accept_gzip(accept_gzip);
        let result =
            within(client.round_trip::<_, ServerToAgent>(&url, &agent_message(1), &options)).await;
        match result {
            Err(Error::MessageTooLarge { size, limit }) => {
                assert_eq!(limit, LIMIT as u64, "gzip: {accept_gzip}");
                assert!(size > LIMIT as u64, "gzip: {accept_gzip}");
            }
            other => panic!("gzip {accept_gzip}: expected MessageTooLarge, got {other:?}"),
        }
    }
    // Under the limit, the same endpoint answers fine.
    let url = format!("http://{}/reply/{}", server.addr, LIMIT / 2);
    let options = HttpRequestOptions::default().with_limits(limits());
    let response = within(client.round_trip::<_, ServerToAgent>(&url, &agent_message(1), &options))
        .await
        .expect("round trip");
    assert_eq!(
        response.message.custom_message.map(|m| m.data.len()),
        Some(LIMIT / 2)
    );
}
