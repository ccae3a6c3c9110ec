//! Prometheus metrics in the text exposition format, written by hand: connected agents by
//! transport, agents by health, messages, offers, configuration statuses, rollouts.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fleet::Fleet;

/// Counters updated as things happen (gauges are computed from the fleet at scrape time).
#[derive(Debug, Default)]
pub struct Metrics {
    messages: AtomicU64,
    offers: AtomicU64,
    connection_offers: AtomicU64,
    commands: AtomicU64,
    rejected: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc_messages(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inc_offers(&self) {
        self.offers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inc_connection_offers(&self) {
        self.connection_offers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inc_commands(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inc_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages received from agents.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Remote configuration offers made.
    pub fn offers(&self) -> u64 {
        self.offers.load(Ordering::Relaxed)
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics page.
pub async fn render(fleet: &Fleet) -> String {
    let m = fleet.metrics();
    let (statuses, s) = fleet.metric_gauges().await;
    let mut out = String::new();
    family(
        &mut out,
        "opamp_fleet_connected_agents",
        "gauge",
        "Agents connected now, by transport.",
    );
    let _ = writeln!(
        out,
        "opamp_fleet_connected_agents{{transport=\"websocket\"}} {}",
        s.websocket
    );
    let _ = writeln!(
        out,
        "opamp_fleet_connected_agents{{transport=\"http\"}} {}",
        s.http
    );
    family(
        &mut out,
        "opamp_fleet_agents",
        "gauge",
        "Known agents, by status.",
    );
    for (status, n) in [
        ("healthy", s.healthy),
        ("unhealthy", s.unhealthy),
        ("unknown", s.unknown),
        ("offline", s.offline),
    ] {
        let _ = writeln!(out, "opamp_fleet_agents{{status=\"{status}\"}} {n}");
    }
    family(
        &mut out,
        "opamp_fleet_messages_received_total",
        "counter",
        "AgentToServer messages received.",
    );
    let _ = writeln!(out, "opamp_fleet_messages_received_total {}", m.messages());
    family(
        &mut out,
        "opamp_fleet_remote_config_offers_total",
        "counter",
        "Remote configuration offers made to agents.",
    );
    let _ = writeln!(out, "opamp_fleet_remote_config_offers_total {}", m.offers());
    family(
        &mut out,
        "opamp_fleet_connection_settings_offers_total",
        "counter",
        "Connection settings offers made to agents.",
    );
    let _ = writeln!(
        out,
        "opamp_fleet_connection_settings_offers_total {}",
        m.connection_offers.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "opamp_fleet_commands_total",
        "counter",
        "Commands (restart) sent to agents.",
    );
    let _ = writeln!(
        out,
        "opamp_fleet_commands_total {}",
        m.commands.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "opamp_fleet_rejected_connections_total",
        "counter",
        "Connection attempts refused for bad or missing credentials.",
    );
    let _ = writeln!(
        out,
        "opamp_fleet_rejected_connections_total {}",
        m.rejected.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "opamp_fleet_remote_config_status",
        "gauge",
        "Agents by last reported remote configuration status.",
    );
    for status in ["UNSET", "APPLYING", "APPLIED", "FAILED"] {
        let n = statuses.get(status).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "opamp_fleet_remote_config_status{{status=\"{status}\"}} {n}"
        );
    }
    family(
        &mut out,
        "opamp_fleet_configs",
        "gauge",
        "Named configurations.",
    );
    let _ = writeln!(out, "opamp_fleet_configs {}", s.configs);
    family(
        &mut out,
        "opamp_fleet_rollouts",
        "gauge",
        "Rollouts by state.",
    );
    let _ = writeln!(
        out,
        "opamp_fleet_rollouts{{state=\"in_progress\"}} {}",
        s.rollouts_in_progress
    );
    let _ = writeln!(
        out,
        "opamp_fleet_rollouts{{state=\"halted\"}} {}",
        s.rollouts_halted
    );
    out
}
