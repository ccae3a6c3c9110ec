//! A conformance kit: peers that misbehave on purpose, one function per scenario.
//!
//! * [`server`]: misbehaving agents, run against any OpAMP server URL (ours or another
//!   implementation's). Each scenario checks that the server gives the spec's answer (an
//!   error response, a close code or an HTTP status) and that a well-behaved agent connected
//!   beside it keeps being served.
//! * [`client`]: misbehaving servers (small local listeners), run against our
//!   [`opamp_client::Client`]. Each checks that the client gets a typed error, does not spin
//!   or hang, and recovers when it can.
//!
//! Every scenario returns an [`Outcome`] describing the answer it saw, or an
//! [`Error::Violation`](crate::Error::Violation) when the answer breaks the spec.

pub mod client;
mod raw;
pub mod server;

use std::fmt;
use std::time::Duration;

pub use raw::{Bystander, rss_bytes};

/// What a peer did in answer to a scenario's misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// A `ServerToAgent` with an `error_response` of this type (`ServerErrorResponseType`).
    ErrorResponse {
        /// The `ServerErrorResponseType` as i32.
        kind: i32,
        /// Its message.
        message: String,
    },
    /// A `ServerToAgent` that assigns the agent a new instance UID.
    NewInstanceUid,
    /// A WebSocket close frame with this code.
    Closed {
        /// The close code.
        code: u16,
        /// Its reason text.
        reason: String,
    },
    /// The TCP connection was closed without a WebSocket close frame or HTTP response.
    Dropped,
    /// An HTTP response with this status.
    HttpStatus(u16),
    /// The connection stayed open and nothing was answered (a bounded wait expired).
    Silent,
    /// A normal reply, as if nothing was wrong.
    NormalReply,
    /// The misbehaving peer was disconnected, then the other side came back by itself (the
    /// number of connection attempts seen).
    Reconnected(u32),
    /// The other side backed off: at most this many attempts were seen in the window.
    BackedOff {
        /// Attempts seen.
        attempts: u32,
        /// The window.
        window: Duration,
    },
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::ErrorResponse { kind, message } => {
                write!(f, "error response (type {kind}): {message}")
            }
            Answer::NewInstanceUid => write!(f, "a new instance UID was assigned"),
            Answer::Closed { code, reason } => write!(f, "close {code} {reason:?}"),
            Answer::Dropped => write!(f, "connection dropped"),
            Answer::HttpStatus(status) => write!(f, "HTTP {status}"),
            Answer::Silent => write!(f, "no answer, connection kept"),
            Answer::NormalReply => write!(f, "a normal reply"),
            Answer::Reconnected(n) => write!(f, "reconnected ({n} attempts)"),
            Answer::BackedOff { attempts, window } => {
                write!(f, "backed off ({attempts} attempts in {window:?})")
            }
        }
    }
}

/// The result of one scenario.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: &'static str,
    /// What the peer under test answered.
    pub answer: Answer,
    /// A typed error observed on our side, if the scenario produces one (e.g. the client's
    /// `on_connect_failed` error), as text.
    pub error: Option<String>,
    /// How long the scenario took.
    pub elapsed: Duration,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} after {:?}",
            self.scenario, self.answer, self.elapsed
        )?;
        if let Some(error) = &self.error {
            write!(f, " (error: {error})")?;
        }
        Ok(())
    }
}

/// Generous bound for one step of a scenario (a slow shared machine).
pub const STEP: Duration = Duration::from_secs(20);
