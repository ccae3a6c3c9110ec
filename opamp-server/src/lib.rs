//! OpAMP server SDK (work in progress).

mod error;
pub mod state;

pub use error::Error;
pub use opamp_proto as proto;
