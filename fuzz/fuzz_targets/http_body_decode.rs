//! A plain-HTTP body through the OpAMP codec, identity and gzip, with a small limit so that
//! inflating past it is exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::Limits;
use opamp_transport::codec::http::{ContentEncoding, decode_http_body, encode_http_body};

#[path = "common.rs"]
mod common;

fuzz_target!(|input: &[u8]| {
    // First byte: encoding and direction; second: limit in KiB (0..=255), the rest: the body.
    let [control, kib, body @ ..] = input else {
        return;
    };
    let encoding = if control & 1 == 0 {
        ContentEncoding::Identity
    } else {
        ContentEncoding::Gzip
    };
    let limits = Limits::default().with_max_message_size(usize::from(*kib) * 1024 + 1);
    if control & 2 == 0 {
        check::<AgentToServer>(body, encoding, &limits);
    } else {
        check::<ServerToAgent>(body, encoding, &limits);
    }
});

fn check<M: prost::Message + Default>(body: &[u8], encoding: ContentEncoding, limits: &Limits) {
    match decode_http_body::<M>(body, encoding, limits) {
        Ok(msg) => {
            let protobuf = common::check_reencode(&msg);
            for enc in [ContentEncoding::Identity, ContentEncoding::Gzip] {
                match encode_http_body(&msg, enc, limits) {
                    Ok(again) => {
                        let back: M =
                            decode_http_body(&again, enc, limits).expect("own body must decode");
                        assert_eq!(back.encode_to_vec(), protobuf);
                    }
                    Err(Error::MessageTooLarge { size, .. }) => {
                        assert_eq!(size, protobuf.len() as u64);
                    }
                    Err(other) => panic!("unexpected encode error {other:?}"),
                }
            }
        }
        Err(Error::MessageTooLarge { size, limit }) => {
            assert!(size > limit);
            // Inflating stops one byte past the limit; an identity body reports its length.
            match encoding {
                ContentEncoding::Gzip => assert_eq!(size, limit + 1),
                ContentEncoding::Identity => assert_eq!(size, body.len() as u64),
            }
        }
        Err(Error::Decode(_)) => {}
        Err(Error::InvalidGzip(_)) => assert_eq!(encoding, ContentEncoding::Gzip),
        Err(other) => panic!("unexpected decode error {other:?}"),
    }
}
