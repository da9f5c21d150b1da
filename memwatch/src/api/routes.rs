//! The endpoints, and which of them the TCP listener keeps open.
use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::json;

use super::{auth::Token, error::ApiError, seed};
use crate::{
    actions::Readiness, api::control::ControlHandle, exporters::prometheus::PrometheusExporter, view::StatusStore,
};

/// A cleanup may take a while (reclaiming a cgroup); past this the client
/// gets a 504 rather than a hung connection.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct ApiState {
    pub status: StatusStore,
    pub control: ControlHandle,
    /// The executor's not-ready flag (one source of truth: the API reads
    /// the executor's handle, not a copy in the view).
    pub readiness: Readiness,
    pub prometheus: Arc<PrometheusExporter>,
}

/// Who is on the other end.
pub enum Access {
    /// The Unix socket: its 0600 mode already limits it to root.
    Local,
    /// TCP: /metrics and /health open, the rest needs the token.
    Remote(Token),
}

pub fn router(state: ApiState, access: Access) -> Router {
    let open = Router::new().route("/health", get(health)).route("/metrics", get(metrics));
    let protected = Router::new()
        .route("/health/metrics", get(health_metrics))
        .route("/health/gc", post(gc))
        .route("/health/cache/{name}", delete(clear_cache))
        .route("/status", get(status));
    let protected = match access {
        Access::Local => protected,
        Access::Remote(token) => {
            protected.route_layer(middleware::from_fn_with_state(token, super::auth::require_token))
        }
    };
    open.merge(protected)
        .fallback(super::error::not_found)
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .with_state(state)
}

async fn health(State(state): State<ApiState>) -> Response {
    let (healthy, body) = seed::health(&state.status.current(), &state.readiness.reasons());
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn health_metrics(State(state): State<ApiState>) -> Response {
    Json(seed::health_metrics(&state.status.current(), &state.readiness.reasons())).into_response()
}

/// The whole view, for `memwatch status` and `memwatch top`.
async fn status(State(state): State<ApiState>) -> Response {
    Json(state.status.current().as_ref().clone()).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let text = state
        .prometheus
        .render()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcQuery {
    target: Option<String>,
}

async fn gc(
    State(state): State<ApiState>,
    query: Result<Query<GcQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let target = query.target.filter(|t| !t.is_empty());
    let report = tokio::time::timeout(CONTROL_TIMEOUT, state.control.cleanup(target))
        .await
        .map_err(|_| ApiError::new(StatusCode::GATEWAY_TIMEOUT, "the cleanup did not finish in time"))??;
    Ok(Json(report).into_response())
}

async fn clear_cache(
    State(state): State<ApiState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let cleared = tokio::time::timeout(CONTROL_TIMEOUT, state.control.clear_cache(name.clone()))
        .await
        .map_err(|_| ApiError::new(StatusCode::GATEWAY_TIMEOUT, "the daemon did not answer in time"))??;
    Ok(Json(json!({ "cache": name, "cleared": cleared })).into_response())
}
