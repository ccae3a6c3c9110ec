//! Plain-HTTP body codec against opamp-go's recorded HTTP exchanges (tests/vectors/http) and
//! random messages. The gzip bomb's memory bound is checked in `codec_gzip_bomb.rs`.

mod codec_common;

use bytes::Bytes;
use codec_common::*;
use opamp_proto::{AgentToServer, Message, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::Limits;
use opamp_transport::codec::classify::{TransportKind, classify_request};
use opamp_transport::codec::http::{
    self, CONTENT_TYPE_PROTOBUF, ContentEncoding, INSTANCE_UID_HEADER, INSTANCE_UID_HEADER_NAME,
};
use proptest::prelude::*;

const SUB: &str = "http";

fn exchanges() -> Vec<std::collections::BTreeMap<String, String>> {
    let rows: Vec<_> = index(SUB)
        .into_iter()
        .filter(|r| !r["id"].starts_with("bad-"))
        .collect();
    assert_eq!(rows.len(), 12);
    rows
}

/// Field names listed after "AgentToServer: " / "ServerToAgent: " in INDEX.tsv.
fn listed_fields(column: &str) -> Vec<String> {
    let (_, list) = column.split_once(": ").unwrap();
    list.split(", ").map(str::to_owned).collect()
}

#[test]
fn recorded_requests_decode_with_their_content_encoding() {
    let limits = Limits::default();
    for row in exchanges() {
        let id = &row["id"];
        let head = RecordedHeaders::parse(
            std::str::from_utf8(&read(SUB, &format!("{id}-request.headers"))).unwrap(),
        );
        let body = read(SUB, &format!("{id}-request.bin"));

        // The request is plain HTTP by the spec's rule.
        assert_eq!(
            classify_request(&head.method(), &head.headers).unwrap(),
            TransportKind::PlainHttp,
            "{id}"
        );
        assert_eq!(head.headers["content-type"], CONTENT_TYPE_PROTOBUF);
        assert!(
            http::headers_accept_gzip(&head.headers),
            "{id}: Go adds Accept-Encoding: gzip"
        );

        let encoding = ContentEncoding::from_headers(&head.headers).unwrap();
        let expected = if row["compression"] == "none" {
            ContentEncoding::Identity
        } else {
            ContentEncoding::Gzip
        };
        assert_eq!(encoding, expected, "{id}");
        if encoding == ContentEncoding::Gzip {
            assert_eq!(&body[..2], &[0x1f, 0x8b], "{id}: gzip magic");
        }

        let msg: AgentToServer = http::decode_http_body(&body, encoding, &limits).unwrap();
        let set = a2s_fields(&msg);
        for field in listed_fields(&row["request"]) {
            assert!(
                set.contains(field.as_str()),
                "{id}: {field} missing in {set:?}"
            );
        }
        // OpAMP-Instance-UID (Go spells it Opamp-Instance-Uid) carries the same uid.
        assert_eq!(
            head.headers[&INSTANCE_UID_HEADER_NAME].to_str().unwrap(),
            uuid_text(&msg.instance_uid),
            "{id}"
        );
        assert_eq!(
            head.headers[INSTANCE_UID_HEADER],
            head.headers[&INSTANCE_UID_HEADER_NAME]
        );

        // Same message through the zero-copy entry point.
        let shared: AgentToServer =
            http::decode_http_body_bytes(Bytes::from(body.clone()), encoding, &limits).unwrap();
        assert_eq!(shared, msg, "{id}");

        // Re-encode in both encodings and decode again.
        for enc in [ContentEncoding::Identity, ContentEncoding::Gzip] {
            let again = http::encode_http_body(&msg, enc, &limits).unwrap();
            let back: AgentToServer = http::decode_http_body(&again, enc, &limits).unwrap();
            assert_eq!(back, msg, "{id} via {enc}");
        }

        // The limit applies to the uncompressed size, whatever the wire size.
        // (measured on the received protobuf: opamp-go writes empty map keys that prost omits,
        // so a re-encoding can be a little shorter).
        let len = http::http_body_data(Bytes::from(body.clone()), encoding, &limits)
            .unwrap()
            .len();
        assert!(len >= msg.encoded_len(), "{id}");
        let under = Limits::default().with_max_message_size(len - 1);
        let err = http::decode_http_body::<AgentToServer>(&body, encoding, &under).unwrap_err();
        assert!(err.is_too_large(), "{id}: {err:?}");
        let exact = Limits::default().with_max_message_size(len);
        assert!(http::decode_http_body::<AgentToServer>(&body, encoding, &exact).is_ok());
    }
}

#[test]
fn recorded_responses_are_gzip_and_decode() {
    let limits = Limits::default();
    for row in exchanges() {
        let id = &row["id"];
        let head = RecordedHeaders::parse(
            std::str::from_utf8(&read(SUB, &format!("{id}-response.headers"))).unwrap(),
        );
        assert_eq!(head.status(), 200);
        let body = read(SUB, &format!("{id}-response.bin"));
        let encoding = ContentEncoding::from_headers(&head.headers).unwrap();
        assert_eq!(
            encoding,
            ContentEncoding::Gzip,
            "{id}: every response is gzip"
        );
        let msg: ServerToAgent = http::decode_http_body(&body, encoding, &limits).unwrap();
        let set = s2a_fields(&msg);
        for field in listed_fields(&row["response"]) {
            assert!(
                set.contains(field.as_str()),
                "{id}: {field} missing in {set:?}"
            );
        }
        // Read as identity, the gzip bytes are not a valid ServerToAgent... or if they happen to
        // parse, they are not this message.
        if let Ok(wrong) =
            http::decode_http_body::<ServerToAgent>(&body, ContentEncoding::Identity, &limits)
        {
            assert_ne!(wrong, msg);
        }
    }
}

#[test]
fn gzip_bomb_stops_at_the_default_limit() {
    let bomb = read(SUB, "bad-gzip-bomb.bin");
    assert!(bomb.len() < 100_000);
    let row = index(SUB)
        .into_iter()
        .find(|r| r["id"] == "bad-gzip-bomb.bin")
        .unwrap();
    assert!(row["notes"].contains("DECOMPRESSED"));
    let err =
        http::decode_http_body::<AgentToServer>(&bomb, ContentEncoding::Gzip, &Limits::default())
            .unwrap_err();
    match err {
        Error::MessageTooLarge { size, limit } => {
            assert_eq!(limit, 64 * 1024 * 1024);
            // Inflating stopped one byte past the limit, not at the 70 MiB the bomb holds.
            assert_eq!(size, limit + 1);
        }
        ref other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.http_status(),
        Some(::http::StatusCode::PAYLOAD_TOO_LARGE)
    );
    // A smaller limit stops earlier.
    let small = Limits::default().with_max_message_size(1024 * 1024);
    match http::decode_http_body::<AgentToServer>(&bomb, ContentEncoding::Gzip, &small) {
        Err(Error::MessageTooLarge { size, limit }) => {
            assert_eq!((size, limit), (1024 * 1024 + 1, 1024 * 1024));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Read as identity, the compressed body itself is within the limit (and not a message).
    let err = http::decode_http_body::<AgentToServer>(
        &bomb,
        ContentEncoding::Identity,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

#[test]
fn corrupt_gzip_is_invalid_gzip() {
    let body = read(SUB, "007-request.bin");
    let limits = Limits::default();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", body[..body.len() / 2].to_vec()),
        ("no trailer", body[..body.len() - 8].to_vec()),
        ("bad magic", {
            let mut b = body.clone();
            b[0] = 0;
            b
        }),
        ("bad crc", {
            let mut b = body.clone();
            let at = b.len() - 8;
            b[at] ^= 0x55;
            b
        }),
        ("trailing garbage", {
            let mut b = body.clone();
            b.extend_from_slice(b"garbage");
            b
        }),
        ("empty", Vec::new()),
    ];
    for (what, bad) in cases {
        let err = http::decode_http_body::<AgentToServer>(&bad, ContentEncoding::Gzip, &limits)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidGzip(_)), "{what}: {err:?}");
        assert_eq!(err.http_status(), Some(::http::StatusCode::BAD_REQUEST));
    }
}

#[test]
fn content_encoding_errors_map_to_415() {
    let err = "br".parse::<ContentEncoding>().unwrap_err();
    assert!(matches!(&err, Error::UnsupportedContentEncoding(v) if v == "br"));
    assert_eq!(
        err.http_status(),
        Some(::http::StatusCode::UNSUPPORTED_MEDIA_TYPE)
    );
}

proptest! {
    #[test]
    fn round_trip_random_bodies(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        repeat in 1usize..8,
        limit in 0usize..40_000,
        gzip: bool,
    ) {
        let enc = if gzip { ContentEncoding::Gzip } else { ContentEncoding::Identity };
        let msg = ServerToAgent {
            instance_uid: Bytes::from_static(&[7; 16]),
            custom_message: Some(opamp_proto::CustomMessage {
                capability: "io.example".into(),
                r#type: "t".into(),
                data: Bytes::from(data.repeat(repeat)),
            }),
            ..Default::default()
        };
        let len = msg.encoded_len();
        let limits = Limits::default().with_max_message_size(limit);
        match http::encode_http_body(&msg, enc, &limits) {
            Ok(body) => {
                prop_assert!(len <= limit);
                let back: ServerToAgent = http::decode_http_body(&body, enc, &limits)?;
                prop_assert_eq!(&back, &msg);
                // One byte less of limit and the same body is refused on receive.
                if limit > 0 && len == limit {
                    let under = Limits::default().with_max_message_size(limit - 1);
                    prop_assert!(http::decode_http_body::<ServerToAgent>(&body, enc, &under)
                        .unwrap_err().is_too_large());
                }
            }
            Err(Error::MessageTooLarge { size, .. }) => {
                prop_assert!(len > limit);
                prop_assert_eq!(size, len as u64);
                // Encoded without a limit, the receiver with this limit refuses it too.
                let body = http::encode_http_body(&msg, enc, &Limits::default())?;
                let err = http::decode_http_body::<ServerToAgent>(&body, enc, &limits).unwrap_err();
                prop_assert!(err.is_too_large());
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn random_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..1024),
        gzip: bool,
        limit in 0usize..4096,
    ) {
        let enc = if gzip { ContentEncoding::Gzip } else { ContentEncoding::Identity };
        let limits = Limits::default().with_max_message_size(limit);
        if let Ok(msg) = http::decode_http_body::<AgentToServer>(&body, enc, &limits) {
            let again = http::encode_http_body(&msg, enc, &Limits::default())?;
            let back: AgentToServer = http::decode_http_body(&again, enc, &Limits::default())?;
            prop_assert_eq!(back, msg);
        }
    }
}
