//! The client's sans-IO state machine (`opamp_client::state::ClientState`) driven by arbitrary
//! step sequences against a model server, asserting its invariants after every step: one
//! merged pending message, `sequence_num` growing by one, status compression that loses
//! nothing, a full report after `ReportFullState`, no ping-pong, and every accepted custom
//! message reported sent or dropped exactly once. The driver is shared with the stable
//! property test `opamp-client/tests/client_state_model.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../opamp-client/tests/client_model/mod.rs"]
mod client_model;

fuzz_target!(|data: &[u8]| {
    client_model::run(data);
});
