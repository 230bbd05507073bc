//! The handlers: each checks the caller's role, calls the library (or the
//! job queue, for traces and marks) acting as the caller, and answers
//! with what it returned.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::{acting_as, Action, Format};
use earmark_jobs::{JobKind, JobView, Recipients};

use crate::upload::{receive, refuse};

use crate::{ApiError, Caller, Service};

/// A recipient to add.
#[derive(serde::Deserialize)]
pub(crate) struct NewRecipient {
    name: String,
    email: Option<String>,
    org: Option<String>,
}

/// A mark to queue: recipients by name or by ledger id, and the format.
#[derive(serde::Deserialize)]
pub(crate) struct NewMark {
    recipients: Vec<serde_json::Value>,
    #[serde(default = "wav")]
    format: Format,
}

fn wav() -> Format {
    Format::Wav
}

pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub(crate) async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", earmark::terminal_safe(uri.path())))
}

pub(crate) async fn recipients(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadRecipients)?;
    Ok(Json(service.home.recipients().await?).into_response())
}

pub(crate) async fn add_recipient(
    State(service): State<Service>,
    caller: Caller,
    body: Result<Json<NewRecipient>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = caller.may(Action::ManageRecipients)?;
    let Json(new) = body.map_err(ApiError::bad_body)?;
    let added = acting_as(
        &user.name,
        service
            .home
            .add_recipient(&new.name, new.email.as_deref(), new.org.as_deref()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// A CSV body (header `name`, optionally `email` and `org`): all rows or
/// none.
pub(crate) async fn import_recipients(
    State(service): State<Service>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = caller.may(Action::ManageRecipients)?;
    let added = acting_as(
        &user.name,
        service
            .home
            .import_recipients(&body[..], std::path::Path::new("the uploaded CSV")),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

pub(crate) async fn works(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadWorks)?;
    Ok(Json(service.home.works().await?).into_response())
}

/// One work with its copies; where the server keeps files is not said.
pub(crate) async fn work(
    State(service): State<Service>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadWorks)?;
    let Path(id) = id.map_err(ApiError::bad_path)?;
    let detail = service.home.work_detail(id).await?;
    let mut value = serde_json::to_value(detail)
        .map_err(|e| ApiError::usage(format!("a work did not serialise: {e}")))?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("master_path");
    }
    if let Some(copies) = value.get_mut("copies").and_then(|c| c.as_array_mut()) {
        for copy in copies.iter_mut().filter_map(|c| c.as_object_mut()) {
            copy.remove("path");
        }
    }
    Ok(Json(value).into_response())
}

/// Registers an uploaded master: multipart, field `file`, optional `title`.
pub(crate) async fn add_work(
    State(service): State<Service>,
    caller: Result<Caller, ApiError>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (caller, multipart) = permitted_upload(caller, Action::AddWorks, multipart).await?;
    let user = &caller.0;
    let upload = receive(&service.jobs, multipart, service.upload_limit_bytes).await?;
    let title = upload.fields.get("title").map(String::as_str);
    let added = acting_as(&user.name, service.home.add_work(upload.file.path(), title))
        .await
        .map_err(|e| match e {
            earmark::Error::Audio(a) => {
                earmark::Error::Audio(a.said_of(std::path::Path::new("the uploaded master")))
            }
            other => other,
        })?;
    let status = if added.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added.work)).into_response())
}

pub(crate) async fn add_mark(
    State(service): State<Service>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<NewMark>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = caller.may(Action::Mark)?;
    let Path(work) = id.map_err(ApiError::bad_path)?;
    let Json(new) = body.map_err(ApiError::bad_body)?;
    let recipients = recipients_of(&new.recipients)?;
    let job = service
        .jobs
        .submit_mark(user, work, recipients, new.format)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Names or ids, not a mixture.
fn recipients_of(values: &[serde_json::Value]) -> Result<Recipients, ApiError> {
    if values.is_empty() {
        return Err(ApiError::usage("name at least one recipient"));
    }
    if let Some(names) = values
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
    {
        return Ok(Recipients::Names(names));
    }
    if let Some(ids) = values
        .iter()
        .map(|v| v.as_i64())
        .collect::<Option<Vec<_>>>()
    {
        return Ok(Recipients::Ids(ids));
    }
    Err(ApiError::usage(
        "recipients are given as names (strings) or as ids (integers), not a mixture",
    ))
}

pub(crate) async fn mark_job(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Mark)?;
    Ok(Json(job_of_kind(&service, &id, JobKind::Mark).await?).into_response())
}

/// Queues a trace of an uploaded leak: multipart, field `file`, optional
/// `work` (the ledger id of the work it is said to be).
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

pub(crate) async fn trace_job(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Trace)?;
    Ok(Json(job_of_kind(&service, &id, JobKind::Trace).await?).into_response())
}

/// Job `id`, if it is of `kind` (a trace's id is not a mark's).
async fn job_of_kind(service: &Service, id: &str, kind: JobKind) -> Result<JobView, ApiError> {
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

pub(crate) async fn audit(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(service.home.audit_log().await?).into_response())
}

pub(crate) async fn audit_verify(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(service.home.audit_verify().await?).into_response())
}

/// The caller of an upload route and its body, if their token is good and
/// their role may do `action`; else the refusal, sent once the body is
/// drained ([`refuse`]).
async fn permitted_upload(
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
