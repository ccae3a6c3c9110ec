//! The connector of the HTTP client's connection pool: TCP, plus TLS for `https://`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;

use crate::Error;
use crate::stream::{self, MaybeTlsStream, Target, TlsClientConfig};

/// Opens pooled connections for [`super::HttpClient`].
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) tls: TlsClientConfig,
    pub(crate) connect_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<MaybeTlsStream>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let target = Target::from_uri(&uri)?;
            match tokio::time::timeout(timeout, stream::connect(&target, &tls)).await {
                Ok(stream) => Ok(TokioIo::new(stream?)),
                Err(_) => Err(Error::Timeout {
                    operation: "HTTP connect",
                    after: timeout,
                }),
            }
        })
    }
}
