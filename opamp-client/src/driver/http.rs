//! The plain-HTTP transport: one `POST` per message, half duplex, polling at the heartbeat
//! interval (spec §"Plain HTTP Transport").

use std::time::Instant;

use opamp_proto::{AgentToServer, InstanceUid, ServerToAgent};
use opamp_transport::codec::http::ContentEncoding;
use opamp_transport::http::{HttpClient, HttpClientSettings, HttpRequestOptions};

use super::{Driver, Outcome, failure_of, proxy};
use crate::Error;
use crate::connection_settings::OpampConnectionParams;
use crate::state::Failure;

/// How requests reach the server: the transport's pooled client, or a tunnel through a proxy
/// per request (with the TLS configuration to use inside it).
enum HttpLink {
    Direct(HttpClient),
    Proxied(Option<std::sync::Arc<opamp_transport::tls::rustls::ClientConfig>>),
}

impl Driver {
    /// Polls and reports over plain HTTP with `params` until they change or the client stops.
    pub(super) async fn run_http(&mut self, params: &OpampConnectionParams) -> Outcome {
        if self.wait_until_retry().await {
            return Outcome::Stop;
        }
        let client = match self.http_client(params) {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(%err, "cannot set up the OpAMP HTTP client");
                self.connect_failed(&err, Failure::Transient).await;
                return Outcome::Reconnect;
            }
        };
        // Requests to this endpoint open with a status report (the full one after new
        // connection settings).
        self.shared.state().on_connected(Instant::now());
        let mut confirmed = false;
        let mut stop = self.shared.stop.subscribe();
        loop {
            if self.dispatch_events().await {
                self.http_disconnect(&client, params).await;
                return Outcome::Reconnect;
            }
            self.handle_requests().await;
            if self.shared.stop_requested() {
                self.http_disconnect(&client, params).await;
                return Outcome::Stop;
            }
            let (msg, deadline, uid) = {
                let mut state = self.shared.state();
                (
                    state.poll_message(Instant::now()),
                    state.poll_timeout(),
                    state.instance_uid(),
                )
            };
            let Some(msg) = msg else {
                self.wait(deadline).await;
                continue;
            };
            let was_connected = self.shared.state().is_connected();
            let exchange = self.http_exchange(&client, params, &msg, uid);
            let result = tokio::select! {
                result = exchange => Some(result),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let now = Instant::now();
            let Some(result) = result else {
                // Stopping: the request is abandoned, its content goes into agent_disconnect.
                self.shared.state().on_send_failed(now, Failure::Transient);
                continue;
            };
            match result {
                Ok(response) => {
                    let good = response.error_response.is_none();
                    let connected = {
                        let mut state = self.shared.state();
                        state.handle_server_message(response, now);
                        state.is_connected()
                    };
                    if connected && !was_connected {
                        tracing::info!(endpoint = %params.endpoint, "OpAMP HTTP server reachable");
                        self.callbacks.on_connect().await;
                    }
                    if good && !confirmed {
                        confirmed = true;
                        self.connection_confirmed().await;
                    }
                }
                Err(err) => {
                    let failure = failure_of(&err);
                    let still_connected = {
                        let mut state = self.shared.state();
                        state.on_send_failed(now, failure);
                        state.is_connected()
                    };
                    tracing::warn!(%err, endpoint = %params.endpoint, "OpAMP HTTP request failed");
                    if was_connected && !still_connected {
                        // The previous request was answered: the "connection" was up.
                        self.callbacks.on_connection_lost(&err).await;
                    } else {
                        self.callbacks.on_connect_failed(&err).await;
                    }
                    if failure != Failure::Rejected
                        && !confirmed
                        && self.candidate_failed(&err).await
                    {
                        return Outcome::Reconnect;
                    }
                }
            }
        }
    }

    fn http_client(&self, params: &OpampConnectionParams) -> Result<HttpLink, Error> {
        let tls = self.tls_config(params)?;
        if params.proxy.is_some() {
            return Ok(HttpLink::Proxied(tls));
        }
        let mut settings =
            HttpClientSettings::default().with_connect_timeout(self.config.connect_timeout);
        if let Some(tls) = tls {
            settings = settings.with_tls(tls);
        }
        Ok(HttpLink::Direct(HttpClient::new(&settings)))
    }

    async fn http_exchange(
        &self,
        client: &HttpLink,
        params: &OpampConnectionParams,
        msg: &AgentToServer,
        uid: InstanceUid,
    ) -> Result<ServerToAgent, Error> {
        let headers = self.connection_headers(params).await?;
        let compression = if self.config.compression {
            ContentEncoding::Gzip
        } else {
            ContentEncoding::Identity
        };
        tracing::trace!(sequence_num = msg.sequence_num, "POST AgentToServer");
        let client = match client {
            HttpLink::Direct(client) => client,
            HttpLink::Proxied(tls) => {
                let Some(proxy) = params.proxy.as_ref() else {
                    return Err(Error::InvalidSettings("no proxy to connect through".into()));
                };
                let exchange = proxy::HttpExchange {
                    endpoint: &params.endpoint,
                    proxy,
                    tls: tls.clone(),
                    headers,
                    instance_uid: uid.to_string(),
                    compression,
                    limits: self.config.limits,
                    timeout: self.config.request_timeout,
                };
                return proxy::http_round_trip(exchange, msg).await;
            }
        };
        let options = HttpRequestOptions::default()
            .with_limits(self.config.limits)
            .with_compression(compression)
            .with_instance_uid(uid.to_string())
            .with_headers(headers)
            .with_timeout(self.config.request_timeout);
        let response = client
            .round_trip::<_, ServerToAgent>(&params.endpoint, msg, &options)
            .await?;
        Ok(response.message)
    }

    /// The last request before stopping or switching settings carries `agent_disconnect`
    /// (spec §"Closing Connection", plain HTTP: SHOULD).
    async fn http_disconnect(&self, client: &HttpLink, params: &OpampConnectionParams) {
        let (msg, uid) = {
            let mut state = self.shared.state();
            (
                state.poll_disconnect_message(Instant::now()),
                state.instance_uid(),
            )
        };
        let Some(msg) = msg else {
            return;
        };
        let exchange = self.http_exchange(client, params, &msg, uid);
        let result = tokio::time::timeout(self.config.stop_timeout, exchange).await;
        let now = Instant::now();
        match result {
            Ok(Ok(response)) => self.shared.state().handle_server_message(response, now),
            Ok(Err(err)) => {
                tracing::debug!(%err, "agent_disconnect not delivered");
                self.shared.state().on_send_failed(now, failure_of(&err));
            }
            Err(_) => {
                tracing::debug!("agent_disconnect timed out");
                self.shared.state().on_send_failed(now, Failure::Transient);
            }
        }
    }
}
