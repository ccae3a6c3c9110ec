//! One `AgentToServer`, whichever transport brought it: state update, UID registration,
//! the embedder's `on_message`, and the reply.

use std::time::Instant;

use bytes::Bytes;
use opamp_proto::{AgentToServer, ServerToAgent};

use crate::Error;
use crate::callbacks::CloseReason;
use crate::connection::Connection;
use crate::server::{Registration, Shared};
use crate::state::{bad_request, unavailable};

/// The reply to one message.
pub(super) enum Reply {
    /// A bare acknowledgement carrying this `instance_uid` (the common case, e.g. the answer
    /// to a heartbeat), which the transports encode without building a message.
    Ack(Bytes),
    /// Anything else.
    Message(Box<ServerToAgent>),
}

impl Reply {
    /// The reply as a message.
    pub(super) fn into_message(self) -> Box<ServerToAgent> {
        match self {
            Reply::Ack(instance_uid) => Box::new(ServerToAgent {
                instance_uid,
                ..Default::default()
            }),
            Reply::Message(msg) => msg,
        }
    }
}

/// The result of processing one message.
pub(super) struct Processed {
    /// The reply to send.
    pub(super) reply: Reply,
    /// The connection must end after the reply.
    pub(super) close: Option<CloseReason>,
    /// The message was refused as a duplicate (plain HTTP answers 409).
    pub(super) rejected_duplicate: bool,
    /// A duplicate the policy lets live without its UID (plain HTTP ends the session after
    /// the reply).
    pub(super) unregistered: bool,
}

impl Processed {
    fn reply(reply: ServerToAgent) -> Self {
        Self {
            reply: Reply::Message(Box::new(reply)),
            close: None,
            rejected_duplicate: false,
            unregistered: false,
        }
    }
}

/// Processes `msg` received on `conn` at `now`. The caller serializes calls per connection.
pub(super) async fn process_message(
    shared: &Shared,
    conn: &Connection,
    msg: Box<AgentToServer>,
    now: Instant,
) -> Processed {
    if let Some(retry_after) = shared.shedding() {
        return Processed::reply(unavailable(msg.instance_uid.clone(), Some(retry_after)));
    }
    let handled = conn.lock().agent.handle_message(&msg, now);
    let outcome = match handled {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::debug!(conn = conn.id(), %err, "bad AgentToServer");
            let uid = conn
                .instance_uid()
                .map(|u| u.to_bytes())
                .unwrap_or_else(|| msg.instance_uid.clone());
            let reply = bad_request(uid, err.to_string());
            conn.inner.callbacks.on_read_message_error(conn, &err).await;
            return Processed::reply(reply);
        }
    };
    if outcome.sequence_gap {
        tracing::debug!(conn = conn.id(), uid = %outcome.instance_uid, "sequence gap: asking for the full state");
    }
    let mut unregistered = false;
    if outcome.first || outcome.adopted.is_some() || outcome.assigned.is_some() {
        match shared.register(conn, &outcome) {
            Registration::Registered => {}
            Registration::Unregistered => unregistered = true,
            Registration::Rejected => {
                let err = Error::DuplicateInstanceUid(outcome.instance_uid);
                let reply = bad_request(outcome.instance_uid.to_bytes(), err.to_string());
                conn.inner.callbacks.on_read_message_error(conn, &err).await;
                return Processed {
                    reply: Reply::Message(Box::new(reply)),
                    close: Some(CloseReason::DuplicateInstanceUid),
                    rejected_duplicate: true,
                    unregistered: false,
                };
            }
        }
    }
    let user = conn.inner.callbacks.on_message(conn, &msg).await;
    let reply = {
        let mut state = conn.lock();
        if user.is_none() && state.agent.is_quiet() {
            // The UID in force is the message's (no assignment pending, nothing else to say).
            Reply::Ack(msg.instance_uid.clone())
        } else {
            Reply::Message(Box::new(state.agent.respond(user)))
        }
    };
    Processed {
        reply,
        close: outcome.disconnect.then_some(CloseReason::AgentDisconnect),
        rejected_duplicate: false,
        unregistered,
    }
}
