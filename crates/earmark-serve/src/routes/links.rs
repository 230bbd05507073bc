//! Delivery links: made by senders, listed and revoked; fetched by
//! recipients at `/d/{token}` with no login, the copy rendered as a job the
//! first time and served from the home after.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::{acting_as, Action, Format};
use tower::ServiceExt;
use utoipa::ToSchema;

use crate::routes::works::recipients_of;
use crate::routes::ErrorBody;
use crate::{ApiError, Caller, Service};

/// Seconds a client is told to wait before asking again for a copy being
/// rendered.
const RETRY_AFTER_S: u64 = 2;

/// Links to make, one per recipient.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct NewDeliveries {
    /// Names (strings) or ledger ids (integers), not a mixture.
    #[schema(value_type = Vec<Object>)]
    recipients: Vec<serde_json::Value>,
    /// `wav` (the default), `flac`, `mp3` or `opus`.
    #[serde(default = "wav")]
    #[schema(value_type = String)]
    format: Format,
    /// How long the links work (`30d`, `12h`); for ever if not given.
    expires: Option<String>,
    /// How many downloads each link allows; unlimited if not given.
    max_downloads: Option<u32>,
}

fn wav() -> Format {
    Format::Wav
}

/// Which links to list.
#[derive(serde::Deserialize)]
pub(crate) struct LinkFilter {
    work: Option<i64>,
}

/// Makes one delivery link per recipient, audited under the caller. No
/// copy is rendered until a link is used. Each secret is in this answer
/// and nowhere else: the ledger keeps only its hash.
#[utoipa::path(post, path = "/api/v1/works/{id}/deliveries", tag = "links",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The work's ledger id")),
    request_body = NewDeliveries,
    responses(
        (status = 201, description = "One `{recipient, recipient_id, id, link, expires_at, max_downloads}` per recipient; `link` is the path `/d/<secret>`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn add_deliveries(
    State(service): State<Service>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<NewDeliveries>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = caller.may(Action::Mark)?;
    let Path(work) = id.map_err(ApiError::bad_path)?;
    let Json(new) = body.map_err(ApiError::bad_body)?;
    let selection = recipients_of(&new.recipients)?.selection();
    let lifetime = new
        .expires
        .as_deref()
        .map(|e| {
            humantime::parse_duration(e).map_err(|_| {
                ApiError::usage(format!(
                    "expires must be a duration such as 30d or 12h, not {}",
                    earmark::terminal_safe(e)
                ))
            })
        })
        .transpose()?;
    let made = acting_as(
        &user.name,
        service
            .home
            .create_links(work, &selection, new.format, lifetime, new.max_downloads),
    )
    .await?;
    let answer: Vec<serde_json::Value> = made
        .iter()
        .map(|m| {
            serde_json::json!({
                "recipient": m.recipient,
                "recipient_id": m.link.recipient_id,
                "id": m.link.id,
                "link": format!("/d/{}", m.secret.as_str()),
                "format": m.link.format,
                "expires_at": m.link.expires_at,
                "max_downloads": m.link.max_downloads,
            })
        })
        .collect();
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Every link (of one work, with `?work=ID`), without secrets.
#[utoipa::path(get, path = "/api/v1/links", tag = "links",
    security(("bearer" = [])),
    params(("work" = Option<i64>, Query, description = "Only this work's links")),
    responses(
        (status = 200, description = "The links, with their download counts"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn links(
    State(service): State<Service>,
    caller: Caller,
    Query(filter): Query<LinkFilter>,
) -> Result<Response, ApiError> {
    caller.may(Action::Mark)?;
    Ok(Json(service.home.links(filter.work).await?).into_response())
}

/// Revokes a link, audited under the caller: it answers 410 from then on.
#[utoipa::path(post, path = "/api/v1/links/{id}/revoke", tag = "links",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The link's ledger id")),
    responses(
        (status = 200, description = "The link, revoked"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_link(
    State(service): State<Service>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = caller.may(Action::Mark)?;
    let Path(id) = id.map_err(ApiError::bad_path)?;
    let link = acting_as(&user.name, service.home.revoke_link(id)).await?;
    Ok(Json(link).into_response())
}

/// Every download through every link: when, from where, by what.
#[utoipa::path(get, path = "/api/v1/downloads", tag = "links",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every download, oldest first"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn downloads(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(service.home.downloads(None).await?).into_response())
}

/// Where a `Range` request starts, bytes; 0 without one.
fn range_start(headers: &HeaderMap) -> u64 {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A recipient's copy, with no login: 202 while it is rendered, then the
/// file (with `Range`). A request that resumes a download (a `Range`
/// starting past the first byte) does not count as a new one.
#[utoipa::path(get, path = "/d/{token}", tag = "links",
    params(("token" = String, Path, description = "The link's secret")),
    responses(
        (status = 200, description = "The copy, as an attachment"),
        (status = 206, description = "Part of the copy"),
        (status = 202, description = "The copy is being prepared; ask again after `Retry-After` seconds"),
        (status = 503, description = "The copy could not be prepared; ask again after `Retry-After` seconds", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 410, description = "The link was revoked, has expired or is used up", body = ErrorBody)))]
pub(crate) async fn download(
    State(service): State<Service>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let counted = range_start(request.headers()) == 0;
    let link = service.home.open_link(&token, counted).await?;
    let Some(copy) = service.home.link_copy(&link).await? else {
        let job = service.jobs.submit_render(&link).await?;
        if job.state == earmark_jobs::JobState::Failed {
            let why = job
                .error
                .as_ref()
                .and_then(|e| e["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            let mut refused = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "render-failed",
                format!("the file could not be prepared ({why}); try again later"),
            )
            .into_response();
            refused.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(earmark_jobs::RENDER_RETRY_S as u64),
            );
            return Ok(refused);
        }
        let body = serde_json::json!({
            "state": "preparing",
            "message": "the file is being prepared; ask again in a moment",
            "retry_after_s": RETRY_AFTER_S,
            "job_state": job.state,
        });
        let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        return Ok(response);
    };
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    service
        .home
        .record_download(&link, &peer.ip().to_string(), &user_agent, counted)
        .await?;
    let served = tower_http::services::ServeFile::new(&copy)
        .oneshot(request)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "write-failed",
                e.to_string(),
            )
        })?;
    let mut response = served.into_response();
    let name: String = earmark::offered_name(&copy)
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
