//! Malformed input on real sockets gives typed errors, never a panic or a hang.
//!
//! * WebSocket: a raw tungstenite peer sends a non-zero OpAMP header, a truncated varint
//!   header, an empty message, a bad protobuf, a text message, or a frame cut short by the end
//!   of the connection, to our server and to our client.
//! * HTTP: bad protobuf or gzip in a request (400), and in a response.

mod io_support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use hyper::Request;
use hyper::body::Incoming;
use io_support::{TestServer, accept_ws, agent_message, limits, within, ws_config};
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::http::{
    HttpClient, HttpClientSettings, HttpRequestOptions, error_response_for, read_request,
};
use opamp_transport::ws::{self, WsConnectOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as RawMessage;

/// What the server's `recv` returned, reduced to something comparable.
#[derive(Debug, PartialEq)]
enum Outcome {
    Message(u64),
    NonZeroHeader(u64),
    TruncatedHeader,
    MissingHeader,
    Decode,
    Text,
    Closed,
    Other(String),
}

fn outcome<M>(result: Result<Option<M>, Error>, seq: impl Fn(&M) -> u64) -> Outcome {
    match result {
        Ok(Some(msg)) => Outcome::Message(seq(&msg)),
        Ok(None) => Outcome::Closed,
        Err(Error::NonZeroWsHeader(header)) => Outcome::NonZeroHeader(header),
        Err(Error::TruncatedWsHeader) => Outcome::TruncatedHeader,
        Err(Error::MissingWsHeader) => Outcome::MissingHeader,
        Err(Error::Decode(_)) => Outcome::Decode,
        Err(Error::UnexpectedTextFrame) => Outcome::Text,
        Err(other) => Outcome::Other(other.to_string()),
    }
}

/// The malformed messages and what a receiver must report for each, with a valid message
/// after each one to show the connection survives.
fn cases() -> Vec<(RawMessage, Outcome)> {
    let valid = |seq: u64| {
        let mut payload = vec![0u8];
        prost::Message::encode(&agent_message(seq), &mut payload).unwrap();
        RawMessage::Binary(payload.into())
    };
    vec![
        (
            RawMessage::Binary(Bytes::from_static(&[0x01, 0x10, 0x01])),
            Outcome::NonZeroHeader(1),
        ),
        (valid(1), Outcome::Message(1)),
        (
            RawMessage::Binary(Bytes::from_static(&[0x80])),
            Outcome::TruncatedHeader,
        ),
        (
            RawMessage::Binary(Bytes::from_static(&[0x80, 0x80])),
            Outcome::TruncatedHeader,
        ),
        (valid(2), Outcome::Message(2)),
        (RawMessage::Binary(Bytes::new()), Outcome::MissingHeader),
        (
            RawMessage::Binary(Bytes::from_static(&[0x00, 0x0a, 0xff])),
            Outcome::Decode,
        ),
        (RawMessage::Text("hello".into()), Outcome::Text),
        (valid(3), Outcome::Message(3)),
    ]
}

#[tokio::test]
async fn server_reports_malformed_messages_from_a_raw_client() {
    let (tx, mut rx) = mpsc::channel(16);
    let server = TestServer::plain(move |request: Request<Incoming>| {
        let tx = tx.clone();
        async move {
            accept_ws(request, ws_config(), move |mut connection| async move {
                loop {
                    let got = outcome(connection.recv::<AgentToServer>().await, |m| m.sequence_num);
                    let done = matches!(got, Outcome::Closed | Outcome::Other(_));
                    let _ = tx.send(got).await;
                    if done {
                        break;
                    }
                }
            })
        }
    })
    .await;

    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut raw, _) = within(tokio_tungstenite::client_async(server.url("ws"), tcp))
        .await
        .expect("raw handshake");
    for (message, expected) in cases() {
        raw.send(message).await.expect("raw send");
        assert_eq!(within(rx.recv()).await, Some(expected));
    }
    raw.close(None).await.expect("raw close");
    assert_eq!(within(rx.recv()).await, Some(Outcome::Closed));
}

/// A raw tungstenite server on 127.0.0.1:0 that runs `script` on the first connection.
async fn raw_server<F, Fut>(script: F) -> std::net::SocketAddr
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        script(ws).await;
    });
    addr
}

#[tokio::test]
async fn client_reports_malformed_messages_from_a_raw_server() {
    let addr = raw_server(|mut ws| async move {
        for (message, _) in cases() {
            ws.send(message).await.unwrap();
        }
        ws.close(None).await.unwrap();
        // Read until the client's close reply.
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (mut connection, _) = within(ws::connect(
        &format!("ws://{addr}/v1/opamp"),
        &WsConnectOptions::default().with_config(ws_config()),
    ))
    .await
    .expect("connect");
    // `recv` is generic: read the `AgentToServer` messages the raw peer sent.
    for (_, expected) in cases() {
        let got = outcome(within(connection.recv::<AgentToServer>()).await, |m| {
            m.sequence_num
        });
        assert_eq!(got, expected);
    }
    assert_eq!(
        outcome(within(connection.recv::<AgentToServer>()).await, |m| m
            .sequence_num),
        Outcome::Closed
    );
}

#[tokio::test]
async fn a_frame_cut_short_by_the_end_of_the_connection_is_an_error() {
    let addr = raw_server(|mut ws| async move {
        // A binary frame announcing 100 bytes of payload, with only 10 sent, then EOF.
        let mut partial = vec![0x82, 100];
        partial.extend_from_slice(&[0u8; 10]);
        let tcp = ws.get_mut();
        tcp.write_all(&partial).await.unwrap();
        tcp.shutdown().await.unwrap();
    })
    .await;
    let (mut connection, _) = within(ws::connect(
        &format!("ws://{addr}/v1/opamp"),
        &WsConnectOptions::default().with_config(ws_config()),
    ))
    .await
    .expect("connect");
    let result = within(connection.recv::<ServerToAgent>()).await;
    assert!(
        matches!(result, Err(Error::WebSocket(_) | Error::Io(_))),
        "{result:?}"
    );
    // The failure is final.
    assert!(matches!(
        within(connection.recv::<ServerToAgent>()).await,
        Err(Error::ConnectionClosed)
    ));
}

#[tokio::test]
async fn http_server_answers_400_to_bad_bodies() {
    let server = TestServer::plain(|request: Request<Incoming>| async move {
        match read_request::<AgentToServer, _>(request, &limits()).await {
            Ok(_) => opamp_transport::http::error_response(StatusCode::OK, None),
            Err(err) => error_response_for(&err),
        }
    })
    .await;
    let cases: [(&[u8], Option<&str>, StatusCode); 4] = [
        (b"\x0a\xff", None, StatusCode::BAD_REQUEST), // truncated protobuf
        (b"not gzip at all", Some("gzip"), StatusCode::BAD_REQUEST),
        (b"\x08\x01", Some("br"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (b"\x10\x01", None, StatusCode::OK), // sequence_num = 1
    ];
    for (body, encoding, expected) in cases {
        let response = post_raw(server.addr, body, encoding).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {}", expected.as_u16())),
            "{body:?} {encoding:?}: {response}"
        );
    }
}

/// Posts `body` with a raw TCP client and returns the response head.
async fn post_raw(addr: std::net::SocketAddr, body: &[u8], encoding: Option<&str>) -> String {
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST /v1/opamp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(encoding) = encoding {
        head.push_str(&format!("Content-Encoding: {encoding}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut response = Vec::new();
    within(tcp.read_to_end(&mut response)).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn http_client_reports_bad_response_bodies() {
    let server = TestServer::plain(|request: Request<Incoming>| async move {
        let (body, encoding): (&'static [u8], Option<&'static str>) = match request.uri().path() {
            "/garbage" => (b"\x0a\xff\xff", None),
            "/bad-gzip" => (b"definitely not gzip", Some("gzip")),
            _ => (b"\x08\x01", Some("br")),
        };
        let mut response = http::Response::new(http_body_util::Full::new(Bytes::from_static(body)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        if let Some(encoding) = encoding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    })
    .await;
    let client = HttpClient::new(&HttpClientSettings::default());
    let options = HttpRequestOptions::default().with_limits(limits());
    let base = format!("http://{}", server.addr);
    let call = |path: &'static str| {
        let client = client.clone();
        let options = options.clone();
        let url = format!("{base}{path}");
        async move {
            within(client.round_trip::<_, ServerToAgent>(&url, &agent_message(1), &options)).await
        }
    };
    assert!(matches!(call("/garbage").await, Err(Error::Decode(_))));
    assert!(matches!(
        call("/bad-gzip").await,
        Err(Error::InvalidGzip(_))
    ));
    assert!(matches!(
        call("/brotli").await,
        Err(Error::UnsupportedContentEncoding(_))
    ));
}
