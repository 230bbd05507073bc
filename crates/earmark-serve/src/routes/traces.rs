//! Traces: leaks uploaded and traced as jobs.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::Action;
use earmark_jobs::{JobKind, JobView};

use crate::routes::{ErrorBody, JobBody, UploadForm};
use crate::upload::{receive, refuse};
use crate::{ApiError, Caller, Service};

/// Queues a trace of an uploaded leak: multipart, field `file`, optional
/// `work` (the ledger id of the work it is said to be). A file that does
/// not open as audio is refused at once.
#[utoipa::path(post, path = "/api/v1/traces", tag = "traces",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "The trace job, queued", body = JobBody),
        (status = 400, description = "Not audio, empty or cut off; nothing was queued", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, description = "Over the upload bound", body = ErrorBody)))]
pub(crate) async fn add_trace(
    State(service): State<Service>,
    caller: Result<Caller, ApiError>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (caller, multipart) = permitted_upload(caller, Action::Trace, multipart).await?;
    let user = &caller.0;
    let upload = receive(&service.jobs, multipart, service.upload_limit_bytes).await?;
    let work = match upload.fields.get("work").map(|w| w.trim()) {
        None | Some("") => None,
        Some(w) => Some(w.parse::<i64>().map_err(|_| {
            ApiError::usage(format!(
                "work must be a work's id, not {}",
                earmark::terminal_safe(w)
            ))
        })?),
    };
    earmark::check_upload(upload.file.path())?;
    tracing::info!(bytes = upload.bytes, "leak received");
    let job = service.jobs.submit_trace(user, upload.file, work).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A trace job: its state, progress and, once done, exactly what
/// `earmark trace --json` prints for the same file.
#[utoipa::path(get, path = "/api/v1/traces/{id}", tag = "traces",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn trace_job(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Trace)?;
    Ok(Json(job_of_kind(&service, &id, JobKind::Trace).await?).into_response())
}

/// Job `id`, if it is of `kind` (a trace's id is not a mark's).
pub(crate) async fn job_of_kind(
    service: &Service,
    id: &str,
    kind: JobKind,
) -> Result<JobView, ApiError> {
    let job = service.jobs.job(id).await?;
    if job.kind != kind {
        return Err(ApiError::not_found(format!(
            "no {} job has id {}",
            kind.as_str(),
            earmark::terminal_safe(id)
        )));
    }
    Ok(job)
}

/// The caller of an upload route and its body, if their token is good and
/// their role may do `action`; else the refusal, sent once the body is
/// drained ([`refuse`]).
pub(crate) async fn permitted_upload(
    caller: Result<Caller, ApiError>,
    action: Action,
    multipart: Multipart,
) -> Result<(Caller, Multipart), ApiError> {
    let refused = match caller {
        Ok(caller) => match caller.may(action) {
            Ok(_) => return Ok((caller, multipart)),
            Err(refused) => refused,
        },
        Err(refused) => refused,
    };
    Err(refuse(multipart, refused).await)
}
