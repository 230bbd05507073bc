//! The handlers: each checks the caller's role, calls the library (or the
//! job queue, for traces and marks) acting as the caller, and answers
//! with what it returned. Each carries its OpenAPI description, and the
//! router is built from those descriptions ([`crate::router`]), so the
//! document and the routes cannot part.

pub(crate) mod audit;
pub(crate) mod links;
pub(crate) mod recipients;
pub(crate) mod traces;
pub(crate) mod works;

use axum::Json;
use utoipa::ToSchema;

use crate::ApiError;

/// An error as every route answers it.
#[derive(ToSchema)]
#[allow(dead_code)] // Described for the document; built as JSON by `ApiError`.
pub(crate) struct ErrorBody {
    /// One line saying what went wrong.
    error: String,
    /// The library's kind of failure (`bad-audio`, `unknown-work`, ...), or
    /// `unauthorized`, `forbidden`, `not-found`, `too-large`.
    kind: String,
    /// The request's id, as in its `x-request-id` header and log lines.
    request_id: String,
}

/// A job as `GET /traces/{id}` and `GET /marks/{id}` answer it.
#[derive(ToSchema)]
#[allow(dead_code)] // Described for the document; `earmark_jobs::JobView` is served.
pub(crate) struct JobBody {
    /// 32 hex digits.
    id: String,
    /// `trace` or `mark`.
    kind: String,
    /// `queued`, `running`, `done` or `failed`.
    state: String,
    /// The stage under way, if the library named one.
    stage: Option<String>,
    /// 0 to 1.
    progress: f64,
    /// The user who asked.
    submitted_by: String,
    /// UTC, RFC 3339.
    submitted_at: String,
    /// UTC, RFC 3339.
    finished_at: Option<String>,
    /// How many times a worker started it.
    runs: i64,
    /// For a trace, exactly what `earmark trace --json` prints; for a mark,
    /// what `earmark mark --json` prints.
    result: Option<serde_json::Value>,
    /// `{error, kind}` when the library refused the job.
    error: Option<serde_json::Value>,
}

/// A file upload: multipart, field `file`, with optional text fields.
#[derive(ToSchema)]
#[allow(dead_code)] // Described for the document; read by `upload::receive`.
pub(crate) struct UploadForm {
    /// The recording, streamed to disk; its file name is never used.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A master's title (`POST /works` only).
    title: Option<String>,
    /// The ledger id of the work a leak is said to be (`POST /traces` only).
    work: Option<i64>,
}

/// Whether the service is up.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document of every route")))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi_document())
}

pub(crate) async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", earmark::terminal_safe(uri.path())))
}
