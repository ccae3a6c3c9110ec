//! Plain HTTP vs. WebSocket detection (spec §"Plain HTTP Transport").

mod codec_common;

use codec_common::{RecordedHeaders, index, read};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use opamp_transport::Error;
use opamp_transport::codec::classify::{
    NotUpgradeReason, TransportKind, check_websocket_upgrade, classify_request,
    is_protobuf_content_type,
};
use proptest::prelude::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// A client handshake as tokio-tungstenite sends it.
fn upgrade() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Host", "127.0.0.1:4320"),
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
}

fn without(
    pairs: &[(&'static str, &'static str)],
    name: &str,
) -> Vec<(&'static str, &'static str)> {
    pairs
        .iter()
        .copied()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .collect()
}

#[test]
fn recorded_plain_http_requests_are_plain_http() {
    for row in index("http")
        .into_iter()
        .filter(|r| !r["id"].starts_with("bad-"))
    {
        let text =
            String::from_utf8(read("http", &format!("{}-request.headers", row["id"]))).unwrap();
        let head = RecordedHeaders::parse(&text);
        assert_eq!(
            classify_request(&head.method(), &head.headers).unwrap(),
            TransportKind::PlainHttp
        );
    }
}

#[test]
fn protobuf_content_type_means_plain_http() {
    for value in [
        "application/x-protobuf",
        "Application/X-Protobuf",
        "application/x-protobuf; charset=utf-8",
        "application/x-protobuf;proto=opamp.v1.AgentToServer",
        "  application/x-protobuf  ",
    ] {
        let h = headers(&[("content-type", value)]);
        assert_eq!(
            classify_request(&Method::POST, &h).unwrap(),
            TransportKind::PlainHttp,
            "{value:?}"
        );
        assert!(is_protobuf_content_type(value.as_bytes()));
    }
}

#[test]
fn protobuf_content_type_wins_over_upgrade_headers() {
    let mut pairs = upgrade();
    pairs.push(("Content-Type", "application/x-protobuf"));
    assert_eq!(
        classify_request(&Method::POST, &headers(&pairs)).unwrap(),
        TransportKind::PlainHttp
    );
    // The same headers with GET: the Content-Type says plain HTTP, and plain HTTP needs POST.
    let err = classify_request(&Method::GET, &headers(&pairs)).unwrap_err();
    assert!(
        matches!(&err, Error::MethodNotAllowed(m) if m == Method::GET),
        "{err:?}"
    );
}

#[test]
fn plain_http_requires_post() {
    let h = headers(&[("content-type", "application/x-protobuf")]);
    for method in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
    ] {
        let err = classify_request(&method, &h).unwrap_err();
        assert!(
            matches!(&err, Error::MethodNotAllowed(m) if *m == method),
            "{err:?}"
        );
        assert_eq!(err.http_status(), Some(StatusCode::METHOD_NOT_ALLOWED));
        assert!(err.is_peer_misbehaviour());
    }
}

#[test]
fn valid_upgrades_are_websocket() {
    assert_eq!(
        classify_request(&Method::GET, &headers(&upgrade())).unwrap(),
        TransportKind::WebSocket
    );
    // Token lists and letter case, as browsers and proxies send them.
    let pairs = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw=="),
    ];
    assert_eq!(
        classify_request(&Method::GET, &headers(&pairs)).unwrap(),
        TransportKind::WebSocket
    );
    // Connection split over two lines.
    let mut two_lines = without(&upgrade(), "connection");
    two_lines.push(("Connection", "keep-alive"));
    two_lines.push(("Connection", "upgrade"));
    assert_eq!(
        classify_request(&Method::GET, &headers(&two_lines)).unwrap(),
        TransportKind::WebSocket
    );
    // Some other Content-Type does not stop an otherwise valid upgrade.
    let mut typed = upgrade();
    typed.push(("Content-Type", "text/plain"));
    assert_eq!(
        classify_request(&Method::GET, &headers(&typed)).unwrap(),
        TransportKind::WebSocket
    );
}

#[test]
fn broken_upgrades_say_why() {
    let cases = [
        (Method::POST, upgrade(), NotUpgradeReason::MethodNotGet),
        (
            Method::GET,
            without(&upgrade(), "upgrade"),
            NotUpgradeReason::MissingUpgradeWebSocket,
        ),
        (
            Method::GET,
            {
                let mut p = without(&upgrade(), "upgrade");
                p.push(("Upgrade", "h2c"));
                p
            },
            NotUpgradeReason::MissingUpgradeWebSocket,
        ),
        (
            Method::GET,
            without(&upgrade(), "connection"),
            NotUpgradeReason::MissingConnectionUpgrade,
        ),
        (
            Method::GET,
            without(&upgrade(), "sec-websocket-key"),
            NotUpgradeReason::MissingWebSocketKey,
        ),
        (
            Method::GET,
            without(&upgrade(), "sec-websocket-version"),
            NotUpgradeReason::UnsupportedWebSocketVersion,
        ),
        (
            Method::GET,
            {
                let mut p = without(&upgrade(), "sec-websocket-version");
                p.push(("Sec-WebSocket-Version", "8"));
                p
            },
            NotUpgradeReason::UnsupportedWebSocketVersion,
        ),
    ];
    for (method, pairs, reason) in cases {
        let h = headers(&pairs);
        assert_eq!(check_websocket_upgrade(&method, &h), Err(reason));
        let err = classify_request(&method, &h).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedRequest(r) if *r == reason),
            "{err:?}"
        );
        let expected = if reason == NotUpgradeReason::UnsupportedWebSocketVersion {
            StatusCode::UPGRADE_REQUIRED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(err.http_status(), Some(expected), "{reason}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn other_content_types_are_unsupported_media_types() {
    for value in [
        "application/json",
        "application/protobuf",
        "text/plain; application/x-protobuf",
    ] {
        let err =
            classify_request(&Method::POST, &headers(&[("content-type", value)])).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedContentType(v) if v == value),
            "{err:?}"
        );
        assert_eq!(err.http_status(), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    // A huge Content-Type is clipped in the error.
    let long = format!("application/{}", "x".repeat(5000));
    let err = classify_request(&Method::POST, &headers(&[("content-type", &long)])).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedContentType(v) if v.len() < 200),
        "{err:?}"
    );
}

#[test]
fn bare_requests_are_bad_requests() {
    let err = classify_request(&Method::POST, &HeaderMap::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedRequest(NotUpgradeReason::MethodNotGet)
        ),
        "{err:?}"
    );
    let err = classify_request(&Method::GET, &HeaderMap::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedRequest(NotUpgradeReason::MissingUpgradeWebSocket)
        ),
        "{err:?}"
    );
}

proptest! {
    /// Never panics, and the outcome follows the spec's rule for any header soup.
    #[test]
    fn random_headers(
        method in prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::OPTIONS]),
        content_type in prop::option::of("[ -~]{0,40}"),
        upgrade_value in prop::option::of("[ -~]{0,20}"),
        connection in prop::option::of("[ -~]{0,20}"),
        key: bool,
        version in prop::option::of("[0-9]{1,3}"),
    ) {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (header::CONTENT_TYPE, &content_type),
            (header::UPGRADE, &upgrade_value),
            (header::CONNECTION, &connection),
        ] {
            // Printable ASCII is always a valid header value.
            if let Some(text) = value {
                h.insert(name, HeaderValue::from_str(text).unwrap());
            }
        }
        if key { h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("abc")); }
        if let Some(v) = &version { h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_str(v).unwrap()); }

        let protobuf = h.get(header::CONTENT_TYPE).is_some_and(|v| is_protobuf_content_type(v.as_bytes()));
        match classify_request(&method, &h) {
            Ok(TransportKind::PlainHttp) => prop_assert!(protobuf && method == Method::POST),
            Ok(TransportKind::WebSocket) => {
                prop_assert!(!protobuf && method == Method::GET && key);
                prop_assert_eq!(version.as_deref(), Some("13"));
            }
            Err(Error::MethodNotAllowed(_)) => prop_assert!(protobuf && method != Method::POST),
            Err(Error::UnsupportedContentType(_)) => {
                prop_assert!(!protobuf && h.contains_key(header::CONTENT_TYPE));
            }
            Err(Error::UnsupportedRequest(_)) => prop_assert!(!h.contains_key(header::CONTENT_TYPE)),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
