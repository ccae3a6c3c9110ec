//! WebSocket transport on real sockets: a client connects to a hyper 1 server that upgrades
//! the connection; messages go both ways; custom headers reach the server on every attempt;
//! refused upgrades surface their status and `Retry-After`; pings are answered.

mod io_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use io_support::{TestServer, accept_ws, agent_message, echo_session, within, ws_config};
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::http::error_response;
use opamp_transport::ws::{self, CloseCode, WsConnectOptions};

fn options() -> WsConnectOptions {
    WsConnectOptions::default().with_config(ws_config())
}

#[tokio::test]
async fn messages_go_both_ways_and_close_cleanly() {
    let server =
        TestServer::plain(|request| async move { accept_ws(request, ws_config(), echo_session) })
            .await;

    let (mut connection, response) = within(ws::connect(&server.url("ws"), &options()))
        .await
        .expect("connect");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);

    for seq in 1..=3 {
        within(connection.send(&agent_message(seq)))
            .await
            .expect("send");
        let reply: ServerToAgent = within(connection.recv())
            .await
            .expect("recv")
            .expect("a reply, not a close");
        assert_eq!(reply.flags, seq, "the server echoes the sequence number");
        assert_eq!(&reply.instance_uid[..], &[7; 16]);
    }

    within(connection.close(CloseCode::Normal, "done"))
        .await
        .expect("close");
    // The server's echo loop ends and its close reply arrives.
    let after_close: Option<ServerToAgent> = within(connection.recv()).await.expect("recv");
    assert!(after_close.is_none());
    let after_close: Option<ServerToAgent> = within(connection.recv()).await.expect("recv");
    assert!(after_close.is_none(), "a closed connection stays closed");
    assert!(matches!(
        within(connection.send(&agent_message(4))).await,
        Err(Error::ConnectionClosed)
    ));
}

#[tokio::test]
async fn split_halves_send_and_receive_from_separate_tasks() {
    let server =
        TestServer::plain(|request| async move { accept_ws(request, ws_config(), echo_session) })
            .await;
    let (connection, _) = within(ws::connect(&server.url("ws"), &options()))
        .await
        .expect("connect");
    let (mut sender, mut receiver) = connection.split();

    const COUNT: u64 = 50;
    let writer = tokio::spawn(async move {
        for seq in 1..=COUNT {
            sender.send(&agent_message(seq)).await.expect("send");
        }
        sender
    });
    // The receiver is pending on the socket while the writer sends: the halves do not block
    // each other.
    for seq in 1..=COUNT {
        let reply: ServerToAgent = within(receiver.recv()).await.expect("recv").expect("reply");
        assert_eq!(reply.flags, seq, "replies arrive in order");
    }
    let mut sender = within(writer).await.expect("writer task");
    within(sender.close(CloseCode::Normal, ""))
        .await
        .expect("close");
    assert!(
        within(receiver.recv::<ServerToAgent>())
            .await
            .expect("recv")
            .is_none()
    );
}

#[tokio::test]
async fn server_pushes_without_a_request() {
    let server = TestServer::plain(|request| async move {
        accept_ws(request, ws_config(), |mut connection| async move {
            for flags in [10, 20] {
                let push = ServerToAgent {
                    flags,
                    ..Default::default()
                };
                connection.send(&push).await.expect("push");
            }
            connection
                .close(CloseCode::Away, "server shutting down")
                .await
                .expect("close");
            // Read the client's close reply.
            while let Ok(Some(_)) = connection.recv::<AgentToServer>().await {}
        })
    })
    .await;
    let (mut connection, _) = within(ws::connect(&server.url("ws"), &options()))
        .await
        .expect("connect");
    for flags in [10, 20] {
        let push: ServerToAgent = within(connection.recv()).await.unwrap().unwrap();
        assert_eq!(push.flags, flags);
    }
    assert!(
        within(connection.recv::<ServerToAgent>())
            .await
            .unwrap()
            .is_none()
    );
    let close = connection
        .peer_close_frame()
        .expect("the server's close frame");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "server shutting down");
}

#[tokio::test]
async fn custom_headers_reach_the_server_on_every_attempt() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let recorder = Arc::clone(&seen);
    let server = TestServer::plain(move |request| {
        recorder.lock().unwrap().push(request.headers().clone());
        async move { accept_ws(request, ws_config(), echo_session) }
    })
    .await;

    let options = options()
        .with_header(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret-token"),
        )
        .with_header(
            http::HeaderName::from_static("x-tenant"),
            HeaderValue::from_static("blue"),
        )
        // Handshake headers cannot be overridden.
        .with_header(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("forged"),
        );
    for attempt in 1..=2 {
        let (mut connection, _) = within(ws::connect(&server.url("ws"), &options))
            .await
            .unwrap_or_else(|err| panic!("attempt {attempt}: {err}"));
        connection
            .close(CloseCode::Normal, "")
            .await
            .expect("close");
    }

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one upgrade request per attempt");
    for headers in seen.iter() {
        assert_eq!(headers[header::AUTHORIZATION], "Bearer secret-token");
        assert_eq!(headers["x-tenant"], "blue");
        assert_eq!(headers.get_all(header::SEC_WEBSOCKET_KEY).iter().count(), 1);
        assert_ne!(headers[header::SEC_WEBSOCKET_KEY], "forged");
    }
}

#[tokio::test]
async fn refused_upgrade_gives_the_status_and_retry_after() {
    let server = TestServer::plain(|request| async move {
        match request.headers().get(header::AUTHORIZATION) {
            None => error_response(StatusCode::UNAUTHORIZED, None),
            Some(_) => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Duration::from_secs(120)),
            ),
        }
    })
    .await;

    match within(ws::connect(&server.url("ws"), &options())).await {
        Err(Error::HttpStatus {
            status,
            retry_after,
            ..
        }) => {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(retry_after, None);
        }
        other => panic!("expected 401, got {other:?}"),
    }

    let authorized = options().with_header(header::AUTHORIZATION, HeaderValue::from_static("x"));
    match within(ws::connect(&server.url("ws"), &authorized)).await {
        Err(Error::HttpStatus {
            status,
            retry_after,
            headers,
        }) => {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
            assert_eq!(headers[header::RETRY_AFTER], "120");
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_upgrade_requests_are_refused_by_the_server_helpers() {
    let server =
        TestServer::plain(|request| async move { accept_ws(request, ws_config(), echo_session) })
            .await;
    // A plain GET (no upgrade headers) gets 400 from `upgrade_error_response`.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /v1/opamp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[tokio::test]
async fn pings_are_answered_and_count_as_activity() {
    let server =
        TestServer::plain(|request| async move { accept_ws(request, ws_config(), echo_session) })
            .await;
    let (connection, _) = within(ws::connect(&server.url("ws"), &options()))
        .await
        .expect("connect");
    let (mut sender, mut receiver) = connection.split();
    let opened = receiver.last_received();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pinged_at = Instant::now();
    sender.ping().await.expect("ping");

    // `recv` skips the pong but notes it; it is cancellation safe, so a caller can poll it
    // with a deadline.
    let deadline = Instant::now() + io_support::GUARD;
    while receiver.last_received() < pinged_at {
        assert!(Instant::now() < deadline, "no pong arrived");
        let polled =
            tokio::time::timeout(Duration::from_millis(50), receiver.recv::<ServerToAgent>()).await;
        assert!(polled.is_err(), "no message was expected, got {polled:?}");
    }
    assert!(receiver.last_received() > opened);

    // The connection still works after cancelled receives.
    sender.send(&agent_message(9)).await.expect("send");
    let reply: ServerToAgent = within(receiver.recv()).await.unwrap().unwrap();
    assert_eq!(reply.flags, 9);
}

#[tokio::test]
async fn bad_urls_refused_ports_and_silent_servers_are_typed_errors() {
    for url in ["http://127.0.0.1:1/v1/opamp", "not a url", "/v1/opamp"] {
        let result = ws::connect(url, &options()).await;
        assert!(
            matches!(result, Err(Error::InvalidUrl { .. })),
            "{url}: {result:?}"
        );
    }

    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = within(ws::connect(&format!("ws://127.0.0.1:{port}/"), &options())).await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");

    // A server that accepts the TCP connection and never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let (_tcp, _) = silent.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let impatient = options().with_connect_timeout(Duration::from_millis(200));
    let result = within(ws::connect(&format!("ws://{addr}/v1/opamp"), &impatient)).await;
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                operation: "WebSocket connect",
                ..
            })
        ),
        "{result:?}"
    );
    holder.abort();
}
