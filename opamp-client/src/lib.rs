//! OpAMP client SDK (work in progress).

pub use opamp_proto as proto;

pub mod callbacks;
mod error;
pub mod state;

pub use callbacks::{CallbackError, Callbacks, MessageData, NoopCallbacks};
pub use error::Error;
pub mod connection_settings;
pub mod packages;
