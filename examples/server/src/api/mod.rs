//! The HTTP side: the JSON API under `/api`, the dashboard page, Server-Sent Events and
//! Prometheus `/metrics`, as one axum router behind the admin credentials.
//!
//! Errors are JSON `{"error": "...", "kind": "..."}` with a 4xx status for bad input
//! (unknown agent or configuration: 404; invalid selector, malformed configuration or body:
//! 400; an agent that is offline or lacks a capability: 409).

mod agents;
mod configs;
mod events;
pub(crate) mod guard;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::AdminAuth;
use crate::dashboard;
use crate::error::FleetError;
use crate::fleet::Fleet;

/// Largest request body accepted (a configuration of 16 files of 1 MiB, in JSON).
pub(crate) const MAX_BODY: usize = 20 * 1024 * 1024;

/// Shared by the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) fleet: Arc<Fleet>,
    pub(crate) auth: Arc<AdminAuth>,
}

/// Who is calling (for the audit log), set by the authentication layer.
#[derive(Debug, Clone)]
pub(crate) struct Actor(pub(crate) String);

/// An error as JSON.
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    kind: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: &self.message,
                kind: self.kind,
            }),
        )
            .into_response()
    }
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        let status = e.status();
        let kind = match &e {
            FleetError::UnknownAgent(_) => "unknown_agent",
            FleetError::UnknownConfig(_) => "unknown_config",
            FleetError::ConfigExists(_) => "config_exists",
            FleetError::InvalidConfig(_) => "invalid_config",
            FleetError::InvalidSelector(_) => "invalid_selector",
            FleetError::InvalidRequest(_) => "invalid_request",
            FleetError::NotConnected(_) => "not_connected",
            FleetError::NotSupported { .. } => "not_supported",
            FleetError::Server(_) => "refused",
            _ => "internal",
        };
        if status.is_server_error() {
            tracing::error!(error = %crate::logsafe::Untrusted(&e.to_string()), "API request failed");
        }
        Self {
            status,
            kind,
            message: e.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self {
            status: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            },
            kind: "invalid_body",
            message: e.body_text(),
        }
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

/// `{"ok": true}`.
#[derive(Serialize)]
pub(crate) struct Done {
    ok: bool,
}

pub(crate) fn done() -> ApiResult<Done> {
    Ok(Json(Done { ok: true }))
}

async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.check(req.headers()) {
        Some(actor) => {
            req.extensions_mut().insert(Actor(actor));
            next.run(req).await
        }
        None => {
            let mut resp = ApiError {
                status: StatusCode::UNAUTHORIZED,
                kind: "unauthorized",
                message: "credentials required".into(),
            }
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"opamp-fleet\", charset=\"UTF-8\""),
            );
            resp
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&state.fleet).await,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "not_found",
        message: "no such endpoint".into(),
    }
}

/// The whole HTTP router.
pub(crate) fn router(fleet: Arc<Fleet>, auth: Arc<AdminAuth>) -> Router {
    let state = AppState { fleet, auth };
    let api = Router::new()
        .route("/summary", get(agents::summary))
        .route("/agents", get(agents::list))
        .route("/agents/{uid}", get(agents::detail).delete(agents::forget))
        .route(
            "/agents/{uid}/config",
            axum::routing::put(agents::set_config).delete(agents::clear_config),
        )
        .route("/agents/{uid}/config/retry", post(agents::retry_config))
        .route(
            "/agents/{uid}/labels",
            axum::routing::put(agents::set_labels),
        )
        .route("/agents/{uid}/restart", post(agents::restart))
        .route("/agents/{uid}/full-state", post(agents::full_state))
        .route(
            "/agents/{uid}/connection-settings",
            post(agents::connection_settings),
        )
        .route("/agents/{uid}/custom-message", post(agents::custom_message))
        .route("/assignments", get(agents::assignments))
        .route("/configs", get(configs::list).post(configs::create))
        .route(
            "/configs/{name}",
            get(configs::get_one)
                .put(configs::update)
                .delete(configs::delete),
        )
        .route("/configs/{name}/rollout", get(configs::rollout))
        .route("/configs/{name}/rollout/pause", post(configs::pause))
        .route("/configs/{name}/rollout/resume", post(configs::resume))
        .route("/rollouts", get(configs::rollouts))
        .route("/validate", post(configs::validate))
        .route("/audit", get(configs::audit))
        .route("/events", get(events::events))
        .fallback(not_found);
    Router::new()
        .nest("/api", api)
        .route("/metrics", get(metrics))
        .merge(dashboard::routes())
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
