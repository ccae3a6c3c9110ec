//! `/api/agents…`: the agent table, the agent page and the actions on one agent.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::{Actor, ApiResult, AppState, Done, done};
use crate::configs::{ConfigFile, ConfigFiles, OfferedConfig, YAML};
use crate::error::FleetError;
use crate::fleet::{
    AgentDetail, AgentFilter, AgentSummary, ConnectionSettingsRequest, CustomMessageRequest,
    FleetSummary,
};
use crate::selector::Selector;

pub(crate) async fn summary(State(s): State<AppState>) -> ApiResult<FleetSummary> {
    Ok(Json(s.fleet.summary().await))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    selector: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AgentList {
    agents: Vec<AgentSummary>,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<AgentList> {
    let selector: Selector = q.selector.parse().map_err(FleetError::from)?;
    if let Some(st) = &q.status
        && !["healthy", "unhealthy", "unknown", "offline"].contains(&st.as_str())
    {
        return Err(FleetError::InvalidRequest(format!("unknown status {st:?}")).into());
    }
    let filter = AgentFilter {
        selector,
        text: q.q,
        status: q.status.filter(|s| !s.is_empty()),
    };
    Ok(Json(AgentList {
        agents: s.fleet.agents(&filter).await,
    }))
}

pub(crate) async fn detail(
    State(s): State<AppState>,
    Path(uid): Path<String>,
) -> ApiResult<AgentDetail> {
    Ok(Json(s.fleet.agent(&uid).await?))
}

pub(crate) async fn forget(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.forget_agent(&uid, &actor.0).await?;
    done()
}

/// A configuration for one agent: several files, or one body (file name `""` unless given).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentConfigInput {
    #[serde(default)]
    files: Option<ConfigFiles>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
}

impl AgentConfigInput {
    fn into_files(self) -> Result<ConfigFiles, FleetError> {
        match (self.files, self.body) {
            (Some(files), None) => Ok(files),
            (None, Some(body)) => {
                let mut files = ConfigFiles::new();
                files.insert(
                    self.file_name.unwrap_or_default(),
                    ConfigFile {
                        content_type: self.content_type.unwrap_or_else(|| YAML.to_owned()),
                        body,
                    },
                );
                Ok(files)
            }
            _ => Err(FleetError::InvalidRequest(
                "give either \"files\" or \"body\"".into(),
            )),
        }
    }
}

pub(crate) async fn set_config(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<AgentConfigInput>, JsonRejection>,
) -> ApiResult<OfferedConfig> {
    let Json(input) = body?;
    let files = input.into_files()?;
    Ok(Json(s.fleet.set_agent_config(&uid, files, &actor.0).await?))
}

pub(crate) async fn clear_config(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.clear_agent_config(&uid, &actor.0).await?;
    done()
}

pub(crate) async fn retry_config(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.retry_agent_config(&uid, &actor.0).await?;
    done()
}

pub(crate) async fn restart(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.restart_agent(&uid, &actor.0).await?;
    done()
}

pub(crate) async fn full_state(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Done> {
    s.fleet.request_full_state(&uid, &actor.0).await?;
    done()
}

#[derive(Serialize)]
pub(crate) struct Offered {
    hash: String,
}

pub(crate) async fn connection_settings(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<ConnectionSettingsRequest>, JsonRejection>,
) -> ApiResult<Offered> {
    let Json(req) = body?;
    let hash = s
        .fleet
        .offer_connection_settings(&uid, req, &actor.0)
        .await?;
    Ok(Json(Offered { hash }))
}

pub(crate) async fn custom_message(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CustomMessageRequest>, JsonRejection>,
) -> ApiResult<Done> {
    let Json(req) = body?;
    s.fleet.send_custom_message(&uid, req, &actor.0).await?;
    done()
}

pub(crate) async fn assignments(State(s): State<AppState>) -> ApiResult<BTreeMap<String, String>> {
    Ok(Json(s.fleet.assignments().await))
}

/// `PUT /api/agents/{uid}/labels`: the operator labels, replaced as a whole.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelsBody {
    labels: BTreeMap<String, String>,
}

pub(crate) async fn set_labels(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<LabelsBody>, JsonRejection>,
) -> ApiResult<LabelsBody> {
    let Json(input) = body?;
    let labels = s
        .fleet
        .set_agent_labels(&uid, input.labels, &actor.0)
        .await?;
    Ok(Json(LabelsBody { labels }))
}
