//! The instance UID an agent uses on one connection, and a new one the server assigned.
//!
//! Spec §"ServerToAgent.agent_identification": the agent MUST switch to `new_instance_uid`.
//! Until it does, its messages still carry the old UID; the server keeps answering them with
//! the same assignment, and takes the first message with the new UID as the switch.

use opamp_proto::InstanceUid;

/// Why the server gave an agent a new instance UID.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UidAssignmentReason {
    /// The agent set `AgentToServerFlags::REQUEST_INSTANCE_UID`.
    Requested,
    /// Another live connection already uses the agent's UID (spec §"Duplicate instance_uid
    /// Detection").
    Duplicate,
    /// The embedder asked for it.
    Embedder,
}

/// A new UID sent to the agent that it has not adopted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub(crate) new_uid: InstanceUid,
    pub(crate) reason: UidAssignmentReason,
}

/// What one incoming UID means for the connection's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The first message of the connection.
    First,
    /// The UID the connection already uses.
    Same,
    /// The agent adopted the UID the server assigned.
    Adopted { old: InstanceUid, new: InstanceUid },
}

/// The identity of the agent behind one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    current: Option<InstanceUid>,
    assignment: Option<Assignment>,
}

impl Identity {
    /// The UID the agent currently uses, once it sent a message.
    pub(crate) fn current(&self) -> Option<InstanceUid> {
        self.current
    }

    /// The UID assigned to the agent and not yet adopted.
    pub(crate) fn assignment(&self) -> Option<Assignment> {
        self.assignment
    }

    /// Takes `uid` from an incoming message. `Err(expected)` if the agent switched to a UID
    /// the server did not give it.
    pub(crate) fn observe(&mut self, uid: InstanceUid) -> Result<Observed, InstanceUid> {
        match self.current {
            None => {
                self.current = Some(uid);
                Ok(Observed::First)
            }
            Some(current) if current == uid => Ok(Observed::Same),
            Some(current) => match self.assignment {
                Some(a) if a.new_uid == uid => {
                    self.current = Some(uid);
                    self.assignment = None;
                    Ok(Observed::Adopted {
                        old: current,
                        new: uid,
                    })
                }
                _ => Err(current),
            },
        }
    }

    /// Assigns `new_uid` unless an assignment is already pending, in which case that one is
    /// kept (so repeated requests get the same answer). Returns the assignment in force and
    /// whether it is new.
    pub(crate) fn assign(
        &mut self,
        new_uid: impl FnOnce() -> InstanceUid,
        reason: UidAssignmentReason,
    ) -> (Assignment, bool) {
        if let Some(existing) = self.assignment {
            return (existing, false);
        }
        let assignment = Assignment {
            new_uid: new_uid(),
            reason,
        };
        self.assignment = Some(assignment);
        (assignment, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u8) -> InstanceUid {
        InstanceUid::from_array([n; 16])
    }

    #[test]
    fn first_same_and_foreign() {
        let mut id = Identity::default();
        assert_eq!(id.observe(uid(1)), Ok(Observed::First));
        assert_eq!(id.observe(uid(1)), Ok(Observed::Same));
        assert_eq!(id.observe(uid(2)), Err(uid(1)));
        assert_eq!(id.current(), Some(uid(1)));
    }

    #[test]
    fn assignment_is_stable_until_adopted() {
        let mut id = Identity::default();
        id.observe(uid(1)).unwrap();
        let (a, fresh) = id.assign(|| uid(9), UidAssignmentReason::Requested);
        assert!(fresh);
        assert_eq!(a.new_uid, uid(9));
        let (again, fresh) = id.assign(|| uid(8), UidAssignmentReason::Requested);
        assert!(!fresh);
        assert_eq!(again.new_uid, uid(9));
        // The agent has not switched yet.
        assert_eq!(id.observe(uid(1)), Ok(Observed::Same));
        assert_eq!(
            id.observe(uid(9)),
            Ok(Observed::Adopted {
                old: uid(1),
                new: uid(9)
            })
        );
        assert_eq!(id.assignment(), None);
        assert_eq!(id.observe(uid(1)), Err(uid(9)));
    }
}
