//! OpAMP client SDK (work in progress).

pub use opamp_proto as proto;

pub mod callbacks;
mod client;
pub mod connection_settings;
mod driver;
mod error;
pub mod packages;
pub mod persistence;
pub mod settings;
pub mod state;

pub use callbacks::{CallbackError, Callbacks, MessageData, NoopCallbacks};
pub use client::{Client, CustomMessageSent};
pub use error::Error;
pub use settings::{ClientSettings, HeaderProvider, PackagesSettings};
