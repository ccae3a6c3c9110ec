//! The OpAMP fleet server (work in progress).

pub mod configs;
pub mod rollout;
pub mod selector;
