//! The model-based check of `ClientState` (see `client_model/mod.rs` for the steps and the
//! invariants) as property tests, plus fixed step sequences that exercise each kind of step.
//! The same driver is the cargo-fuzz target `client_state` (`fuzz/`); this is its short form
//! that runs on stable in CI.

mod client_model;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn client_state_invariants_hold(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        client_model::run(&data);
    }
}

/// Every step kind with every argument residue, over both transports, deterministically.
#[test]
fn every_step_kind_runs_on_both_transports() {
    for transport in [0u8, 1] {
        let mut data = vec![transport];
        for op in 0..16u8 {
            for arg in [0u8, 1, 2, 3, 5, 7, 8, 13, 64, 255] {
                data.extend([op, arg]);
                // Interleave sends and server messages so the steps meet every state.
                data.extend([6, arg.wrapping_mul(3)]);
                data.extend([9, arg]);
            }
        }
        client_model::run(&data);
    }
}

/// A server that keeps losing its state and a connection that keeps breaking: the state
/// must still converge, and the server must end up knowing everything.
#[test]
fn converges_under_repeated_loss() {
    for transport in [0u8, 1] {
        let mut data = vec![transport];
        for round in 0..50u8 {
            data.extend([
                0, round, 1, round, 3, round, 6, 0, 9, 1, 11, 0, 13, 50, 12, 0,
            ]);
        }
        client_model::run(&data);
    }
}
