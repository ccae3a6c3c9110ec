//! The headers of a connection attempt or HTTP request: static headers from the settings,
//! then headers from offered connection settings, then the header provider's, each layer
//! replacing headers of the same name from the layers below.
//!
//! The configured layers (static headers and the provider's) carry the Agent's credentials
//! for the configured server: they are sent only to the origin of the configured server URL,
//! unless [`MergeOptions::send_configured_headers_anywhere`] is set. An endpoint offered
//! elsewhere gets only the headers offered with it.
//!
//! [`MergeOptions::send_configured_headers_anywhere`]: crate::connection_settings::MergeOptions::send_configured_headers_anywhere

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Error;
use crate::connection_settings::{OpampConnectionParams, same_origin};
use crate::settings::HeaderProvider;

fn overlay(base: &mut HeaderMap, top: &HeaderMap) {
    for name in top.keys() {
        base.remove(name);
    }
    for (name, value) in top {
        base.append(name.clone(), value.clone());
    }
}

/// The configured headers and where they may go.
pub(crate) struct ConfiguredHeaders<'a> {
    /// Static headers from the settings.
    pub(crate) static_headers: &'a HeaderMap,
    /// The header provider from the settings.
    pub(crate) provider: Option<&'a Arc<dyn HeaderProvider>>,
    /// The configured server URL: its origin gets the configured headers.
    pub(crate) base_url: &'a str,
    /// Send them to any endpoint.
    pub(crate) anywhere: bool,
}

/// The headers for one attempt. The provider is called every time (token refresh).
pub(crate) async fn connection_headers(
    configured: &ConfiguredHeaders<'_>,
    params: &OpampConnectionParams,
) -> Result<HeaderMap, Error> {
    let ours = configured.anywhere || same_origin(configured.base_url, &params.endpoint);
    if !ours {
        tracing::debug!(
            endpoint = %params.endpoint,
            "another origin than the configured server: configured headers are not sent"
        );
    }
    let static_headers = ours.then_some(configured.static_headers);
    let provider = configured.provider.filter(|_| ours);
    let mut headers = static_headers.cloned().unwrap_or_default();
    let mut offered = HeaderMap::new();
    for (name, value) in &params.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                offered.append(name, value);
            }
            _ => tracing::warn!(%name, "skipping an offered header that is not valid HTTP"),
        }
    }
    overlay(&mut headers, &offered);
    if let Some(provider) = provider {
        // A panicking provider fails this attempt (retried with backoff), not the client.
        let provided = super::guard::CatchUnwind::new(provider.headers())
            .await
            .map_err(|panic| {
                tracing::error!(%panic, "the header provider panicked");
                format!("the header provider panicked: {panic}").into()
            })
            .and_then(|result| result)
            .map_err(|source| Error::Callback {
                callback: "header provider",
                source,
            })?;
        overlay(&mut headers, &provided);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HeaderMap {
        let mut base = HeaderMap::new();
        base.insert("x-api-key", HeaderValue::from_static("static"));
        base.insert("x-keep", HeaderValue::from_static("kept"));
        base
    }

    fn provider() -> Arc<dyn HeaderProvider> {
        Arc::new(|| {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static("Bearer 1"));
            h
        })
    }

    #[tokio::test]
    async fn layers_replace_by_name() {
        let base = base();
        let provider = provider();
        let configured = ConfiguredHeaders {
            static_headers: &base,
            provider: Some(&provider),
            base_url: "ws://h/v1/opamp",
            anywhere: false,
        };
        let params = OpampConnectionParams::new("ws://h/v1/opamp")
            .with_header("X-API-Key", "offered")
            .with_header("bad header", "x");
        let headers = connection_headers(&configured, &params).await.unwrap();
        assert_eq!(headers["x-api-key"], "offered");
        assert_eq!(headers["x-keep"], "kept");
        assert_eq!(headers["authorization"], "Bearer 1");
        assert_eq!(headers.len(), 3);
    }

    #[tokio::test]
    async fn configured_headers_stay_with_the_configured_origin() {
        let base = base();
        let provider = provider();
        let mut configured = ConfiguredHeaders {
            static_headers: &base,
            provider: Some(&provider),
            base_url: "wss://h/v1/opamp",
            anywhere: false,
        };
        let elsewhere =
            OpampConnectionParams::new("wss://other/v1/opamp").with_header("X-Offered", "yes");
        let headers = connection_headers(&configured, &elsewhere).await.unwrap();
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["x-offered"], "yes");
        configured.anywhere = true;
        let headers = connection_headers(&configured, &elsewhere).await.unwrap();
        assert_eq!(headers.len(), 4, "{headers:?}");
    }
}
