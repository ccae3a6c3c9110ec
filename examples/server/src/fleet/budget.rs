//! The bytes the fleet keeps per agent are bounded, so that `--max-agents` × this bound is
//! the memory (and store) the agents' reports can take, whatever an agent sends.
//!
//! After each status update the reported parts of a record are measured (as the JSON the
//! store writes): short texts (status error messages) are cut at [`MAX_STATUS_TEXT`], then
//! the parts are admitted in order of usefulness — description (attributes), health, package
//! statuses, available components, custom capabilities, effective configuration — while they
//! fit in [`FleetOptions::max_agent_bytes`](super::FleetOptions::max_agent_bytes); a part
//! that does not fit is not stored, and [`AgentRecord::oversized`] says which and why (shown
//! on the agent page and in the API), with a warning in the log.

use serde::Serialize;

use crate::agent::AgentRecord;

/// Longest error or status text kept in a status part; longer ones are cut (marked `…`).
pub const MAX_STATUS_TEXT: usize = 4096;

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

fn size<T: Serialize + ?Sized>(v: &T) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Applies the per-agent limit to `record`; the parts it dropped are listed in
/// `record.oversized` (empty when everything fit).
pub(crate) fn enforce(record: &mut AgentRecord, max_bytes: usize) {
    if let Some(s) = &mut record.remote_config_status {
        cut(&mut s.error, MAX_STATUS_TEXT);
        cut(&mut s.hash, 128);
    }
    if let Some(s) = &mut record.connection_settings_status {
        cut(&mut s.error, MAX_STATUS_TEXT);
        cut(&mut s.hash, 128);
        cut(&mut s.status, 64);
    }
    let mut oversized = Vec::new();
    // The fixed part: connection facts, what the fleet offered, statuses (cut above).
    let mut used = size(&record.connection)
        + size(&record.remote_config_status)
        + size(&record.connection_settings_status)
        + size(&record.custom_messages);
    let mut admit = |what: &str, bytes: usize, oversized: &mut Vec<String>| {
        if used.saturating_add(bytes) <= max_bytes {
            used += bytes;
            true
        } else {
            oversized.push(format!(
                "{what}: {bytes} bytes, over the limit of {max_bytes} bytes per agent; not stored"
            ));
            false
        }
    };
    let description = size(&record.identifying) + size(&record.non_identifying);
    if !admit("agent description", description, &mut oversized) {
        record.identifying.clear();
        record.non_identifying.clear();
    }
    if !admit("health", size(&record.health), &mut oversized) {
        record.health = None;
    }
    if !admit(
        "package statuses",
        size(&record.package_statuses),
        &mut oversized,
    ) {
        record.package_statuses = None;
    }
    if !admit(
        "available components",
        size(&record.available_components),
        &mut oversized,
    ) {
        record.available_components = None;
    }
    if !admit(
        "custom capabilities",
        size(&record.custom_capabilities),
        &mut oversized,
    ) {
        record.custom_capabilities.clear();
    }
    if !admit(
        "effective configuration",
        size(&record.effective_config),
        &mut oversized,
    ) {
        record.effective_config = None;
    }
    if !oversized.is_empty() && oversized != record.oversized {
        tracing::warn!(
            agent = %record.instance_uid,
            parts = %crate::logsafe::Untrusted(&oversized.join("; ")),
            "agent report over the per-agent limit: parts not stored"
        );
    }
    record.oversized = oversized;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::RemoteStatusView;
    use crate::configs::{ConfigFile, ConfigFiles};
    use crate::rollout::ReportedStatus;

    #[test]
    fn parts_over_the_limit_are_dropped_and_said() {
        let mut r = AgentRecord::new("u".into(), 0);
        r.identifying.insert("service.name".into(), "svc".into());
        let mut files = ConfigFiles::new();
        files.insert(
            String::new(),
            ConfigFile {
                content_type: "text/yaml".into(),
                body: "x".repeat(100_000),
            },
        );
        r.effective_config = Some(files);
        r.remote_config_status = Some(RemoteStatusView {
            hash: "ab".into(),
            status: ReportedStatus::Failed,
            error: "e".repeat(50_000),
        });
        enforce(&mut r, 64 * 1024);
        assert_eq!(r.identifying["service.name"], "svc");
        assert!(r.effective_config.is_none());
        assert_eq!(r.oversized.len(), 1, "{:?}", r.oversized);
        assert!(r.oversized[0].starts_with("effective configuration"));
        let err = &r.remote_config_status.as_ref().unwrap().error;
        assert!(err.len() <= MAX_STATUS_TEXT + 3 && err.ends_with('…'));
        assert!(serde_json::to_vec(&r).unwrap().len() < 64 * 1024 + 2048);
        // Under the limit again: nothing is said.
        r.effective_config = None;
        enforce(&mut r, 64 * 1024);
        assert!(r.oversized.is_empty());
    }
}
