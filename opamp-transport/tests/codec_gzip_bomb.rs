//! The gzip bomb from opamp-go's vectors (71 KB inflating to 70 MiB) must fail with
//! MessageTooLarge without the decoder ever holding much more than the limit.
//!
//! This file is its own test binary with a counting global allocator (the `cap` crate), and it
//! holds a single test so that the peak it reads belongs to this decode alone.

use std::alloc::System;

use cap::Cap;
use opamp_proto::AgentToServer;
use opamp_transport::Error;
use opamp_transport::codec::Limits;
use opamp_transport::codec::http::{ContentEncoding, decode_http_body};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const MIB: usize = 1024 * 1024;

/// Allocator slack besides the output buffer: the input, the inflate state, test harness.
const SLACK: usize = 4 * MIB;

#[test]
fn gzip_bomb_peak_memory_stays_at_the_limit() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/http/bad-gzip-bomb.bin"
    );
    let bomb = std::fs::read(path).unwrap();

    // Small limit first, so the process-wide peak still reflects it.
    let small = Limits::default().with_max_message_size(MIB);
    let before = ALLOCATOR.allocated();
    let err = decode_http_body::<AgentToServer>(&bomb, ContentEncoding::Gzip, &small).unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { size, limit } if size == MIB as u64 + 1 && limit == MIB as u64),
        "{err:?}"
    );
    let peak_small = ALLOCATOR.max_allocated();
    assert!(
        peak_small < before + MIB + SLACK,
        "1 MiB limit: peak {peak_small} bytes, {before} before"
    );

    // The default 64 MiB limit: the bomb inflates to 70 MiB, decoding must stop at 64 MiB + 1.
    let limits = Limits::default();
    let err = decode_http_body::<AgentToServer>(&bomb, ContentEncoding::Gzip, &limits).unwrap_err();
    match err {
        Error::MessageTooLarge { size, limit } => {
            assert_eq!(limit, Limits::DEFAULT_MAX_MESSAGE_SIZE as u64);
            assert_eq!(size, limit + 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    let peak = ALLOCATOR.max_allocated();
    let bound = before + Limits::DEFAULT_MAX_MESSAGE_SIZE + SLACK;
    assert!(
        peak < bound,
        "64 MiB limit: peak {peak} bytes, bound {bound}"
    );
    assert!(peak < 70 * MIB, "peak {peak} bytes reached the bomb's size");
    // Everything was freed again.
    assert!(ALLOCATOR.allocated() < before + SLACK);
}
