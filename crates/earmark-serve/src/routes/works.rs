//! Works: masters uploaded, listed, and marked for recipients as jobs.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::{acting_as, Action, Format, Profile};
use earmark_jobs::{JobKind, Recipients};
use utoipa::ToSchema;

use crate::routes::traces::{job_of_kind, permitted_upload};
use crate::routes::{ErrorBody, JobBody, UploadForm};
use crate::upload::receive;
use crate::{ApiError, Caller, Service};

/// A mark to queue: recipients by name or by ledger id, the format and the
/// profile.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct NewMark {
    /// Names (strings) or ledger ids (integers), not a mixture.
    #[schema(value_type = Vec<Object>)]
    recipients: Vec<serde_json::Value>,
    /// `wav` (the default), `flac`, `mp3` or `opus`.
    #[serde(default = "wav")]
    #[schema(value_type = String)]
    format: Format,
    /// `transparent`, `balanced` (the default) or `robust`.
    #[serde(default)]
    #[schema(value_type = String)]
    profile: Profile,
}

fn wav() -> Format {
    Format::Wav
}

/// Every registered work.
#[utoipa::path(get, path = "/api/v1/works", tag = "works",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every work"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn works(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadWorks)?;
    Ok(Json(service.home.works().await?).into_response())
}

/// Registers an uploaded master, audited under the caller: its recording
/// goes into the home's store and its landmarks into the index.
#[utoipa::path(post, path = "/api/v1/works", tag = "works",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The work registered"),
        (status = 200, description = "The work already registered with the same recording"),
        (status = 400, description = "Not audio, empty or cut off; nothing was registered", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, description = "Over the upload bound", body = ErrorBody)))]
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

/// One work with its copies; where the server keeps files is not said.
#[utoipa::path(get, path = "/api/v1/works/{id}", tag = "works",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The work's ledger id")),
    responses(
        (status = 200, description = "The work and its delivered copies"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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

/// Queues the marking of a work for recipients; the job's result lists
/// each copy.
#[utoipa::path(post, path = "/api/v1/works/{id}/marks", tag = "works",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The work's ledger id")),
    request_body = NewMark,
    responses(
        (status = 202, description = "The mark job, queued", body = JobBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "An unknown or removed recipient", body = ErrorBody)))]
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
        .submit_mark(user, work, recipients, new.format, new.profile)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Names or ids, not a mixture.
pub(crate) fn recipients_of(values: &[serde_json::Value]) -> Result<Recipients, ApiError> {
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

/// A mark job: its state, progress and, once done, its copies.
#[utoipa::path(get, path = "/api/v1/marks/{id}", tag = "works",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn mark_job(
    State(service): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Mark)?;
    Ok(Json(job_of_kind(&service, &id, JobKind::Mark).await?).into_response())
}
