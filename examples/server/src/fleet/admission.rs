//! Admission of instance UIDs the fleet has not seen: at most
//! [`FleetOptions::new_agents_per_minute`](super::FleetOptions::new_agents_per_minute) per
//! source address (a token bucket per IPv4 address or IPv6 /64), and none when the registry
//! is full of records that may not be forgotten (connected, or holding operator-set state).
//!
//! A refused agent gets an `UNAVAILABLE` error response with a retry delay (spec
//! §"Throttling") and is not recorded; agents the fleet knows are never refused here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use opamp_proto::{RetryInfo, ServerErrorResponse, ServerErrorResponseType, ServerToAgent};
use opamp_server::Connection;

use super::Fleet;
use crate::logsafe::Untrusted;

/// Most source addresses tracked at once; beyond it new addresses are refused until some
/// buckets are full again (then forgotten).
pub const MAX_TRACKED_SOURCES: usize = 4096;
/// Retry delay suggested to a refused agent.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of new UIDs per source.
#[derive(Debug)]
pub(crate) struct NewAgentLimiter {
    per_minute: u32,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The bucket key of an address: IPv4 as is, IPv6 by its /64 (one host owns a /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl NewAgentLimiter {
    /// `per_minute` new UIDs per source (and as many at once); 0: unlimited.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: HashMap::new(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let cap = f64::from(self.per_minute);
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cap / 60.0).min(cap);
        b.at = now;
    }

    /// Takes one token for `ip`; false if its bucket is empty.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let key = source_key(ip);
        let cap = f64::from(self.per_minute);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_TRACKED_SOURCES {
            // Forget the sources whose bucket is full again: they lose nothing.
            let mut buckets = std::mem::take(&mut self.buckets);
            buckets.retain(|_, b| {
                self.refill(b, now);
                b.tokens < cap
            });
            self.buckets = buckets;
            if self.buckets.len() >= MAX_TRACKED_SOURCES {
                return false;
            }
        }
        let mut b = self.buckets.get(&key).copied().unwrap_or(Bucket {
            tokens: cap,
            at: now,
        });
        self.refill(&mut b, now);
        let ok = b.tokens >= 1.0;
        if ok {
            b.tokens -= 1.0;
        }
        self.buckets.insert(key, b);
        ok
    }
}

fn unavailable(message: String) -> ServerToAgent {
    ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: ServerErrorResponseType::Unavailable as i32,
            error_message: message,
            details: Some(opamp_proto::server_error_response::Details::RetryInfo(
                RetryInfo {
                    retry_after_nanoseconds: u64::try_from(RETRY_AFTER.as_nanos())
                        .unwrap_or(u64::MAX),
                },
            )),
        }),
        ..Default::default()
    }
}

impl Fleet {
    /// `None` if the message of `conn` may be handled; otherwise the refusal to send back.
    pub(crate) async fn admit(&self, conn: &Connection) -> Option<ServerToAgent> {
        let uid = conn.instance_uid()?.to_string();
        let state = self.lock().await;
        if state.agents.contains_key(&uid) {
            return None;
        }
        let full = state.agents.len() >= self.options.max_agents
            && !state
                .agents
                .values()
                .any(|a| !state.conns.contains_key(&a.instance_uid) && !a.holds_operator_state());
        drop(state);
        if full {
            self.metrics.inc_rejected();
            tracing::warn!(
                agent = %Untrusted(&uid),
                max_agents = self.options.max_agents,
                "new agent refused: the registry is full of connected agents and agents with operator-set state"
            );
            return Some(unavailable("the fleet is full".into()));
        }
        let ip = conn.remote_addr()?.ip();
        let allowed = self
            .new_agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allow(ip, Instant::now());
        if allowed {
            return None;
        }
        self.metrics.inc_rejected();
        tracing::warn!(
            agent = %Untrusted(&uid),
            remote = %ip,
            per_minute = self.options.new_agents_per_minute,
            "new agent refused: too many new instance UIDs from this address"
        );
        Some(unavailable(
            "too many new agents from this address; retry later".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_per_source_refill_over_time() {
        let mut l = NewAgentLimiter::new(60);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..60 {
            assert!(l.allow(a, t0));
        }
        assert!(!l.allow(a, t0));
        assert!(l.allow(b, t0), "another address has its own bucket");
        assert!(
            l.allow(a, t0 + Duration::from_secs(1)),
            "one per second comes back"
        );
        assert!(!l.allow(a, t0 + Duration::from_secs(1)));
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        for _ in 0..60 {
            assert!(l.allow(v6a, t0));
        }
        assert!(!l.allow(v6b, t0), "one /64 shares a bucket");
        let mut open = NewAgentLimiter::new(0);
        assert!((0..10_000).all(|_| open.allow(a, t0)));
    }

    #[test]
    fn tracked_sources_are_bounded() {
        let mut l = NewAgentLimiter::new(2);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_SOURCES as u32 {
            assert!(l.allow(IpAddr::V4(i.into()), t0));
        }
        assert!(!l.allow(IpAddr::V4(u32::MAX.into()), t0));
        assert!(l.buckets.len() <= MAX_TRACKED_SOURCES);
        // A minute later every bucket is full again: forgotten, room for new sources.
        assert!(l.allow(IpAddr::V4(u32::MAX.into()), t0 + Duration::from_secs(61)));
        assert_eq!(l.buckets.len(), 1);
    }
}
