//! Own telemetry: where the server wants the agent to send its own metrics, traces and logs
//! (`own_metrics`, `own_traces`, `own_logs` offers, spec §"Own Telemetry Reporting"), and the
//! configuration layer that makes a collector do it.
//!
//! * metrics: the pipeline of the OpAMP walkthrough: a `prometheus/own_metrics` receiver
//!   scraping the agent's own Prometheus endpoint every 10 s, an `otlphttp/own_metrics`
//!   exporter to the offered URL, and a `metrics/own_metrics` pipeline joining them;
//! * traces and logs: the collector's `service.telemetry` settings with an OTLP/HTTP
//!   exporter to the offered URL (a collector has no receiver for its own spans and logs).

use std::collections::BTreeMap;
use std::fmt;

use opamp_client::proto::TelemetryConnectionSettings;
use opamp_example_agent::yaml::{Mapping, Value};
use serde::{Deserialize, Serialize};

/// Where to send one signal. `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The full OTLP/HTTP URL (e.g. `https://otlp.example.com/v1/metrics`).
    pub endpoint: String,
    /// Headers to send (often credentials).
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Destination {
    /// The destination of an offer; an empty endpoint means "stop sending".
    pub fn from_offer(offer: &TelemetryConnectionSettings) -> Option<Self> {
        if offer.destination_endpoint.trim().is_empty() {
            return None;
        }
        Some(Destination {
            endpoint: offer.destination_endpoint.clone(),
            headers: offer
                .headers
                .iter()
                .flat_map(|h| &h.headers)
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect(),
        })
    }
}

/// The three destinations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnTelemetry {
    /// Own metrics.
    pub metrics: Option<Destination>,
    /// Own traces.
    pub traces: Option<Destination>,
    /// Own logs.
    pub logs: Option<Destination>,
}

/// Offers as received (a signal left out keeps its previous destination).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryOffers {
    /// `own_metrics`.
    pub metrics: Option<TelemetryConnectionSettings>,
    /// `own_traces`.
    pub traces: Option<TelemetryConnectionSettings>,
    /// `own_logs`.
    pub logs: Option<TelemetryConnectionSettings>,
}

fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Mapping(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<Mapping>(),
    )
}

fn list(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Sequence(items.into_iter().collect())
}

fn headers_map(headers: &BTreeMap<String, String>) -> Value {
    Value::Mapping(
        headers
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    )
}

fn otlp_http_exporter(destination: &Destination) -> Value {
    let mut exporter = vec![
        ("protocol", Value::from("http/protobuf")),
        ("endpoint", Value::from(destination.endpoint.as_str())),
    ];
    if !destination.headers.is_empty() {
        exporter.push((
            "headers",
            list(destination.headers.iter().map(|(k, v)| {
                map([
                    ("name", Value::from(k.as_str())),
                    ("value", Value::from(v.as_str())),
                ])
            })),
        ));
    }
    map([("batch", map([("exporter", map([("otlp", map(exporter))]))]))])
}

impl OwnTelemetry {
    /// Applies offers: a signal offered changes (or, with an empty endpoint, stops); a signal
    /// not offered keeps its destination.
    pub fn apply(&mut self, offers: &TelemetryOffers) {
        for (slot, offer) in [
            (&mut self.metrics, &offers.metrics),
            (&mut self.traces, &offers.traces),
            (&mut self.logs, &offers.logs),
        ] {
            if let Some(offer) = offer {
                *slot = Destination::from_offer(offer);
            }
        }
    }

    /// Whether no destination is set.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_none() && self.traces.is_none() && self.logs.is_none()
    }

    /// The configuration layer (an empty mapping when nothing is offered). `scrape_target` is
    /// the agent's own Prometheus endpoint (`localhost:8888` for a collector).
    pub fn layer(&self, scrape_target: &str) -> Value {
        let mut root = Mapping::new();
        if let Some(metrics) = &self.metrics {
            let scrape = map([
                ("job_name", Value::from("otel-collector")),
                ("scrape_interval", Value::from("10s")),
                (
                    "static_configs",
                    list([map([("targets", list([Value::from(scrape_target)]))])]),
                ),
            ]);
            root.insert(
                "receivers".into(),
                map([(
                    "prometheus/own_metrics",
                    map([("config", map([("scrape_configs", list([scrape]))]))]),
                )]),
            );
            let mut exporter = vec![("metrics_endpoint", Value::from(metrics.endpoint.as_str()))];
            if !metrics.headers.is_empty() {
                exporter.push(("headers", headers_map(&metrics.headers)));
            }
            root.insert(
                "exporters".into(),
                map([("otlphttp/own_metrics", map(exporter))]),
            );
        }
        let mut service = Mapping::new();
        if self.metrics.is_some() {
            service.insert(
                "pipelines".into(),
                map([(
                    "metrics/own_metrics",
                    map([
                        ("receivers", list([Value::from("prometheus/own_metrics")])),
                        ("exporters", list([Value::from("otlphttp/own_metrics")])),
                    ]),
                )]),
            );
        }
        let mut telemetry = Mapping::new();
        if let Some(traces) = &self.traces {
            telemetry.insert(
                "traces".into(),
                map([("processors", list([otlp_http_exporter(traces)]))]),
            );
        }
        if let Some(logs) = &self.logs {
            telemetry.insert(
                "logs".into(),
                map([("processors", list([otlp_http_exporter(logs)]))]),
            );
        }
        if !telemetry.is_empty() {
            service.insert("telemetry".into(), Value::Mapping(telemetry));
        }
        if !service.is_empty() {
            root.insert("service".into(), Value::Mapping(service));
        }
        Value::Mapping(root)
    }
}

#[cfg(test)]
mod tests {
    use opamp_client::proto::{Header, Headers};
    use opamp_example_agent::yaml::get_path;

    use super::*;

    fn offer(endpoint: &str) -> TelemetryConnectionSettings {
        TelemetryConnectionSettings {
            destination_endpoint: endpoint.into(),
            headers: Some(Headers {
                headers: vec![Header {
                    key: "Authorization".into(),
                    value: "Bearer s3cret".into(),
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn offers_update_only_what_they_name() {
        let mut own = OwnTelemetry::default();
        own.apply(&TelemetryOffers {
            metrics: Some(offer("http://m/v1/metrics")),
            traces: Some(offer("http://t/v1/traces")),
            ..Default::default()
        });
        own.apply(&TelemetryOffers {
            traces: Some(offer("")),
            ..Default::default()
        });
        assert_eq!(
            own.metrics.as_ref().unwrap().endpoint,
            "http://m/v1/metrics"
        );
        assert!(own.traces.is_none());
        assert!(!format!("{own:?}").contains("s3cret"));
    }

    #[test]
    fn metrics_layer_is_the_walkthrough_pipeline() {
        let own = OwnTelemetry {
            metrics: Destination::from_offer(&offer("http://m/v1/metrics")),
            ..Default::default()
        };
        let layer = own.layer("localhost:8888");
        assert_eq!(
            get_path(&layer, "exporters.otlphttp/own_metrics.metrics_endpoint")
                .and_then(Value::as_str),
            Some("http://m/v1/metrics")
        );
        let pipeline = get_path(&layer, "service.pipelines.metrics/own_metrics").unwrap();
        assert_eq!(
            pipeline["receivers"][0].as_str(),
            Some("prometheus/own_metrics")
        );
        let yaml = serde_norway::to_string(&layer).unwrap();
        assert!(yaml.contains("localhost:8888"), "{yaml}");
        // The result is a valid collector configuration part.
        let mut full: Value = serde_norway::from_str("service: {}\n").unwrap();
        opamp_example_agent::yaml::merge(&mut full, layer);
        opamp_example_agent::pipelines::validate(&full).unwrap();
    }

    #[test]
    fn traces_and_logs_use_service_telemetry() {
        let own = OwnTelemetry {
            traces: Destination::from_offer(&offer("http://t/v1/traces")),
            logs: Destination::from_offer(&offer("http://l/v1/logs")),
            ..Default::default()
        };
        let layer = own.layer("x");
        let exporter = get_path(&layer, "service.telemetry.traces.processors").unwrap()[0]["batch"]
            ["exporter"]["otlp"]
            .clone();
        assert_eq!(exporter["endpoint"].as_str(), Some("http://t/v1/traces"));
        assert_eq!(
            exporter["headers"][0]["name"].as_str(),
            Some("Authorization")
        );
        assert!(get_path(&layer, "service.telemetry.logs").is_some());
        assert!(get_path(&layer, "receivers").is_none());
        assert_eq!(
            OwnTelemetry::default().layer("x"),
            Value::Mapping(Mapping::new())
        );
    }
}
