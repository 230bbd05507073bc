//! Failures as the service answers them: an HTTP status from the
//! library's error kind, and a JSON body `{error, kind, request_id}`.

use axum::extract::multipart::MultipartError;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::{Action, ErrorKind, User};
use earmark_jobs::JobError;

/// The HTTP status for a kind of failure: the service's one table.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Usage | ErrorKind::BadAudio | ErrorKind::BadText => StatusCode::BAD_REQUEST,
        ErrorKind::BadRecipients => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooLittleSignal => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::UnknownWork => StatusCode::NOT_FOUND,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::UnknownLink => StatusCode::NOT_FOUND,
        ErrorKind::LinkGone => StatusCode::GONE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed request: its status, its one-line message and its kind.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: kind.into(),
        }
    }

    pub(crate) fn forbidden(user: &User, action: Action) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} {} may not {action:?}",
                user.role.as_str(),
                earmark::terminal_safe(&user.name)
            ),
        )
    }

    /// A body that is not the JSON the route takes.
    pub(crate) fn bad_body(rejection: JsonRejection) -> Self {
        Self::new(
            rejection.status(),
            "usage",
            rejection.body_text().replace('\n', " "),
        )
    }

    /// A path parameter that is not what the route takes.
    pub(crate) fn bad_path(rejection: PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "usage",
            rejection.body_text().replace('\n', " "),
        )
    }

    /// A multipart body that could not be read: cut off, malformed or over
    /// the size bound.
    pub(crate) fn bad_upload(error: MultipartError) -> Self {
        let status = error.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-large"
        } else {
            "usage"
        };
        Self::new(
            status,
            kind,
            format!(
                "the upload could not be read ({}); nothing was recorded",
                error.body_text().replace('\n', " ")
            ),
        )
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "usage", message)
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }
}

impl From<earmark::Error> for ApiError {
    fn from(error: earmark::Error) -> Self {
        let kind = error.kind();
        ApiError {
            status: status_of(kind),
            message: error.to_string(),
            kind: serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::Earmark(e) => e.into(),
            JobError::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            JobError::UnknownJob(_) => Self::not_found(error.to_string()),
            JobError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                error.to_string(),
            ),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ledger",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        } else {
            tracing::warn!(status = %self.status, error = %self.message, "request refused");
        }
        // The request id is filled in by the layer that knows it.
        let body = serde_json::json!({
            "error": self.message,
            "kind": self.kind,
            "request_id": serde_json::Value::Null,
        });
        (self.status, Json(body)).into_response()
    }
}
