//! Plain-HTTP transport on real sockets: `HttpClient::round_trip` against a hyper 1 server
//! built from the server helpers; gzip both ways, the instance UID and custom headers, keep-alive,
//! and 401/429/503 with `Retry-After` surfaced as typed errors.

mod io_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper::{Request, Response};
use io_support::{TestServer, agent_message, custom_message, limits, within};
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::classify::{TransportKind, classify_request};
use opamp_transport::codec::http::{ContentEncoding, headers_accept_gzip};
use opamp_transport::http::{
    HttpClient, HttpClientSettings, HttpRequestOptions, ServerHttpBody, error_response,
    error_response_for, protobuf_response, read_request,
};

const UID: &str = "0190b3b2-6b1e-7a39-b3ad-2f1c9a6f4e11";

/// What the server saw of each request.
#[derive(Default)]
struct Seen {
    headers: Vec<HeaderMap>,
    messages: Vec<AgentToServer>,
}

/// An OpAMP plain-HTTP endpoint: decodes the `AgentToServer` and answers a `ServerToAgent`
/// echoing its sequence number (in `flags`) and carrying its custom message back.
async fn endpoint(request: Request<Incoming>, seen: Arc<Mutex<Seen>>) -> Response<ServerHttpBody> {
    if let Err(err) =
        classify_request(request.method(), request.headers()).and_then(|kind| match kind {
            TransportKind::PlainHttp => Ok(()),
            TransportKind::WebSocket => Err(Error::ConnectionClosed),
        })
    {
        return error_response_for(&err);
    }
    let accept_gzip = headers_accept_gzip(request.headers());
    match read_request::<AgentToServer, _>(request, &limits()).await {
        Ok((parts, message)) => {
            let reply = ServerToAgent {
                instance_uid: message.instance_uid.clone(),
                flags: message.sequence_num,
                custom_message: message.custom_message.clone(),
                ..Default::default()
            };
            let mut seen = seen.lock().unwrap();
            seen.headers.push(parts.headers);
            seen.messages.push(message);
            protobuf_response(&reply, accept_gzip, &limits())
                .unwrap_or_else(|err| error_response_for(&err))
        }
        Err(err) => error_response_for(&err),
    }
}

async fn opamp_server() -> (TestServer, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Arc::clone(&seen);
    let server = TestServer::plain(move |request| endpoint(request, Arc::clone(&state))).await;
    (server, seen)
}

fn client() -> HttpClient {
    HttpClient::new(&HttpClientSettings::default())
}

#[tokio::test]
async fn gzip_both_ways_with_instance_uid() {
    let (server, seen) = opamp_server().await;
    let mut request = agent_message(1);
    request.custom_message = Some(custom_message(64 * 1024)); // compresses well
    let options = HttpRequestOptions::default()
        .with_limits(limits())
        .with_compression(ContentEncoding::Gzip)
        .with_instance_uid(UID);

    let response =
        within(client().round_trip::<_, ServerToAgent>(&server.url("http"), &request, &options))
            .await
            .expect("round trip");

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers[header::CONTENT_ENCODING], "gzip");
    let compressed_len: usize = response.headers[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        compressed_len < 64 * 1024 / 10,
        "response body is compressed"
    );
    assert_eq!(response.message.flags, 1);
    assert_eq!(response.message.custom_message, request.custom_message);

    let seen = seen.lock().unwrap();
    let headers = &seen.headers[0];
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
    assert_eq!(headers["opamp-instance-uid"], UID);
    let sent_len: usize = headers[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent_len < 64 * 1024 / 10, "request body is compressed");
    assert_eq!(seen.messages[0], request);
}

#[tokio::test]
async fn identity_both_ways_when_gzip_is_not_wanted() {
    let (server, seen) = opamp_server().await;
    let mut request = agent_message(2);
    request.custom_message = Some(custom_message(4096));
    let options = HttpRequestOptions::default()
        .with_limits(limits())
        .with_accept_gzip(false);

    let response =
        within(client().round_trip::<_, ServerToAgent>(&server.url("http"), &request, &options))
            .await
            .expect("round trip");
    assert!(response.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(response.message.custom_message, request.custom_message);

    let seen = seen.lock().unwrap();
    assert!(seen.headers[0].get(header::CONTENT_ENCODING).is_none());
    assert!(seen.headers[0].get(header::ACCEPT_ENCODING).is_none());
    assert!(seen.headers[0].get("opamp-instance-uid").is_none());
}

#[tokio::test]
async fn custom_headers_on_every_request_over_one_kept_alive_connection() {
    let (server, seen) = opamp_server().await;
    let client = client();
    let options = HttpRequestOptions::default()
        .with_limits(limits())
        .with_header(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"))
        // The client owns the content headers.
        .with_header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    for seq in 1..=3 {
        let response = within(client.round_trip::<_, ServerToAgent>(
            &server.url("http"),
            &agent_message(seq),
            &options,
        ))
        .await
        .expect("round trip");
        assert_eq!(response.message.flags, seq);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.headers.len(), 3);
    for headers in &seen.headers {
        assert_eq!(headers[header::AUTHORIZATION], "Bearer t");
        assert_eq!(headers.get_all(header::CONTENT_TYPE).iter().count(), 1);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    }
    assert_eq!(server.connections(), 1, "the pooled connection is reused");
}

#[tokio::test]
async fn throttling_and_auth_statuses_are_typed_errors() {
    let server = TestServer::plain(|request: Request<Incoming>| async move {
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/unauthorized" => error_response(StatusCode::UNAUTHORIZED, None),
            "/busy" => error_response(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(30))),
            _ => {
                // 503 with an HTTP-date two minutes ahead.
                let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, None);
                let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_str(&when).unwrap());
                response
            }
        }
    })
    .await;
    let client = client();
    let options = HttpRequestOptions::default().with_limits(limits());
    let base = format!("http://{}", server.addr);

    let status_of = |result: Result<_, Error>| match result {
        Err(Error::HttpStatus {
            status,
            retry_after,
            ..
        }) => (status, retry_after),
        Ok(response) => panic!("expected an error status, got {response:?}"),
        Err(other) => panic!("expected an error status, got {other:?}"),
    };

    let result = within(client.round_trip::<_, ServerToAgent>(
        &format!("{base}/unauthorized"),
        &agent_message(1),
        &options,
    ))
    .await;
    assert_eq!(status_of(result), (StatusCode::UNAUTHORIZED, None));

    let result = within(client.round_trip::<_, ServerToAgent>(
        &format!("{base}/busy"),
        &agent_message(1),
        &options,
    ))
    .await;
    assert_eq!(
        status_of(result),
        (StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(30)))
    );

    let result = within(client.round_trip::<_, ServerToAgent>(
        &format!("{base}/unavailable"),
        &agent_message(1),
        &options,
    ))
    .await;
    let (status, retry_after) = status_of(result);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // An HTTP-date has a one-second resolution and the clock moves on: allow some slack.
    let wait = retry_after.expect("HTTP-date Retry-After parsed");
    assert!(
        wait > Duration::from_secs(60) && wait <= Duration::from_secs(121),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_slow_server_hits_the_request_timeout() {
    let server = TestServer::plain(|_request: Request<Incoming>| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        error_response(StatusCode::OK, None)
    })
    .await;
    let options = HttpRequestOptions::default()
        .with_limits(limits())
        .with_timeout(Duration::from_millis(200));
    let result = within(client().round_trip::<_, ServerToAgent>(
        &server.url("http"),
        &agent_message(1),
        &options,
    ))
    .await;
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                operation: "HTTP request",
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_errors() {
    let client = client();
    let options = HttpRequestOptions::default();
    for url in ["ws://127.0.0.1:1/v1/opamp", "not a url", "/relative"] {
        let result = client
            .round_trip::<_, ServerToAgent>(url, &agent_message(1), &options)
            .await;
        assert!(
            matches!(result, Err(Error::InvalidUrl { .. })),
            "{url}: {result:?}"
        );
    }
    // Bind then drop a listener so the port is (very likely) closed.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = within(client.round_trip::<_, ServerToAgent>(
        &format!("http://127.0.0.1:{port}/v1/opamp"),
        &agent_message(1),
        &options,
    ))
    .await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}
