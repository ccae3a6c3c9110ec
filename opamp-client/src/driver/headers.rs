//! The headers of a connection attempt or HTTP request: static headers from the settings,
//! then headers from offered connection settings, then the header provider's, each layer
//! replacing headers of the same name from the layers below.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Error;
use crate::connection_settings::OpampConnectionParams;
use crate::settings::HeaderProvider;

fn overlay(base: &mut HeaderMap, top: &HeaderMap) {
    for name in top.keys() {
        base.remove(name);
    }
    for (name, value) in top {
        base.append(name.clone(), value.clone());
    }
}

/// The headers for one attempt. The provider is called every time (token refresh).
pub(crate) async fn connection_headers(
    static_headers: &HeaderMap,
    params: &OpampConnectionParams,
    provider: Option<&Arc<dyn HeaderProvider>>,
) -> Result<HeaderMap, Error> {
    let mut headers = static_headers.clone();
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
        let provided = provider.headers().await.map_err(|source| Error::Callback {
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

    #[tokio::test]
    async fn layers_replace_by_name() {
        let mut base = HeaderMap::new();
        base.insert("x-api-key", HeaderValue::from_static("static"));
        base.insert("x-keep", HeaderValue::from_static("kept"));
        let params = OpampConnectionParams::new("ws://h/v1/opamp")
            .with_header("X-API-Key", "offered")
            .with_header("bad header", "x");
        let provider: Arc<dyn HeaderProvider> = Arc::new(|| {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static("Bearer 1"));
            h
        });
        let headers = connection_headers(&base, &params, Some(&provider))
            .await
            .unwrap();
        assert_eq!(headers["x-api-key"], "offered");
        assert_eq!(headers["x-keep"], "kept");
        assert_eq!(headers["authorization"], "Bearer 1");
        assert_eq!(headers.len(), 3);
    }
}
