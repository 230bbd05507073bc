//! The people copies are made for.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::{acting_as, Action};
use utoipa::ToSchema;

use crate::routes::ErrorBody;
use crate::{ApiError, Caller, Service};

/// A recipient to add.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct NewRecipient {
    /// Unique, checked so that no two people can pass for each other.
    name: String,
    email: Option<String>,
    org: Option<String>,
}

/// Every recipient, retired ones included, by id.
#[utoipa::path(get, path = "/api/v1/recipients", tag = "recipients",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every recipient"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn recipients(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadRecipients)?;
    Ok(Json(service.home.recipients().await?).into_response())
}

/// Adds one recipient, audited under the caller.
#[utoipa::path(post, path = "/api/v1/recipients", tag = "recipients",
    security(("bearer" = [])), request_body = NewRecipient,
    responses(
        (status = 201, description = "The recipient added"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "A name that is taken, blank, or passes for another's", body = ErrorBody)))]
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

/// Imports recipients from a CSV body (header `name`, optionally `email`
/// and `org`): every row or none, audited under the caller.
#[utoipa::path(post, path = "/api/v1/recipients/import", tag = "recipients",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 201, description = "The recipients added"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "A bad row; nothing was imported", body = ErrorBody)))]
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
