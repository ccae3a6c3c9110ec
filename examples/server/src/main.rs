//! `opamp-fleet-server` binary.

fn main() {}
