//! Raw protobuf decoding of ServerToAgent (what an agent decodes from its server).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opamp_proto::{Message, ServerToAgent};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = ServerToAgent::decode(data) {
        common::check_reencode(&msg);
    }
});
