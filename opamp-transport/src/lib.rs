//! OpAMP transports for both sides of the protocol.
//!
//! (Quick start and design overview: to be written once the modules land.)

pub mod codec;
mod error;

pub use error::Error;
