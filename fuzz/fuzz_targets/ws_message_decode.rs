//! One WebSocket binary message through the OpAMP codec: varint header, size limit, protobuf,
//! for both directions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::{Limits, ws};

#[path = "common.rs"]
mod common;

/// Small enough that the fuzzer regularly produces inputs over it.
const LIMIT: usize = 4096;

fuzz_target!(|payload: &[u8]| {
    let limits = Limits::default().with_max_message_size(LIMIT);
    let framing = ws::ws_payload_data(payload, &limits);
    match &framing {
        Ok(data) => assert!(data.len() < payload.len()),
        Err(Error::MessageTooLarge { size, .. }) => assert_eq!(*size, payload.len() as u64),
        Err(Error::MissingWsHeader) => assert!(payload.is_empty()),
        Err(Error::NonZeroWsHeader(v)) => assert_ne!(*v, 0),
        Err(Error::TruncatedWsHeader | Error::MalformedWsHeader) => {}
        Err(other) => panic!("unexpected framing error {other:?}"),
    }
    let a2s = ws::decode_ws_message::<AgentToServer>(payload, &limits);
    let s2a = ws::decode_ws_message::<ServerToAgent>(payload, &limits);
    // A framing error is reported the same whatever the message type.
    if framing.is_err() {
        assert!(a2s.is_err() && s2a.is_err());
    }
    if let Ok(msg) = a2s {
        round_trip(&msg, &limits);
    }
    if let Ok(msg) = s2a {
        round_trip(&msg, &limits);
    }
});

fn round_trip<M: prost::Message + Default>(msg: &M, limits: &Limits) {
    let protobuf = common::check_reencode(msg);
    match ws::encode_ws_message(msg, limits) {
        Ok(frame) => {
            assert_eq!(frame[0], 0x00);
            assert_eq!(&frame[1..], &protobuf[..]);
            let again: M = ws::decode_ws_message(&frame, limits).expect("own frame must decode");
            assert_eq!(again.encode_to_vec(), protobuf);
        }
        // The canonical re-encoding is not guaranteed to be no longer than the input; if it is
        // over the limit, the sender must refuse it with MessageTooLarge.
        Err(Error::MessageTooLarge { size, limit }) => {
            assert_eq!(size, 1 + protobuf.len() as u64);
            assert!(size > limit);
        }
        Err(other) => panic!("unexpected encode error {other:?}"),
    }
}
