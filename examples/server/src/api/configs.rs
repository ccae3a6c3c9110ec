//! `/api/configs…`, `/api/rollouts`, `/api/validate`, `/api/audit`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::{Actor, ApiResult, AppState, Done, done};
use crate::audit::AuditEntry;
use crate::configs::{ConfigFiles, NamedConfig, config_hash, hex, validate_files};
use crate::fleet::ConfigInput;
use crate::rollout::Rollout;

#[derive(Serialize)]
pub(crate) struct ConfigList {
    configs: Vec<NamedConfig>,
}

pub(crate) async fn list(State(s): State<AppState>) -> ApiResult<ConfigList> {
    Ok(Json(ConfigList {
        configs: s.fleet.configs().await,
    }))
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<ConfigInput>, JsonRejection>,
) -> Result<(StatusCode, Json<NamedConfig>), super::ApiError> {
    let Json(input) = body?;
    let c = s.fleet.create_config(input, &actor.0).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

pub(crate) async fn get_one(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<NamedConfig> {
    Ok(Json(s.fleet.config(&name).await?))
}

pub(crate) async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<ConfigInput>, JsonRejection>,
) -> ApiResult<NamedConfig> {
    let Json(input) = body?;
    Ok(Json(s.fleet.update_config(&name, input, &actor.0).await?))
}

pub(crate) async fn delete(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.delete_config(&name, &actor.0).await?;
    done()
}

pub(crate) async fn rollout(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Rollout> {
    Ok(Json(s.fleet.rollout(&name).await?))
}

pub(crate) async fn pause(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Rollout> {
    Ok(Json(
        s.fleet.set_rollout_paused(&name, true, &actor.0).await?,
    ))
}

pub(crate) async fn resume(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Rollout> {
    Ok(Json(
        s.fleet.set_rollout_paused(&name, false, &actor.0).await?,
    ))
}

#[derive(Serialize)]
pub(crate) struct RolloutList {
    rollouts: Vec<Rollout>,
}

pub(crate) async fn rollouts(State(s): State<AppState>) -> ApiResult<RolloutList> {
    Ok(Json(RolloutList {
        rollouts: s.fleet.rollouts().await,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateInput {
    files: ConfigFiles,
}

#[derive(Serialize)]
pub(crate) struct Validated {
    valid: bool,
    hash: String,
}

/// Checks files without storing or sending anything.
pub(crate) async fn validate(
    body: Result<Json<ValidateInput>, JsonRejection>,
) -> ApiResult<Validated> {
    let Json(input) = body?;
    validate_files(&input.files).map_err(crate::error::FleetError::from)?;
    Ok(Json(Validated {
        valid: true,
        hash: hex(&config_hash(&input.files)),
    }))
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct AuditList {
    entries: Vec<AuditEntry>,
}

pub(crate) async fn audit(
    State(s): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<AuditList> {
    Ok(Json(AuditList {
        entries: s.fleet.audit_log(q.limit.unwrap_or(100), q.before).await?,
    }))
}
