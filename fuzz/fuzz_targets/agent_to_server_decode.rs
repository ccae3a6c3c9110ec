//! Raw protobuf decoding of AgentToServer (what a server decodes from every agent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opamp_proto::{AgentToServer, Message};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = AgentToServer::decode(data) {
        common::check_reencode(&msg);
    }
});
