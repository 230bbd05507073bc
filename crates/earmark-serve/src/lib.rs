//! earmark's team service: the HTTP API over the `earmark` library.
//!
//! Owns: routing, bearer-token authentication (through
//! [`earmark::Home::authenticate_token`]), turning the library's
//! [`earmark::ErrorKind`] into an HTTP status and a JSON error
//! `{error, kind, request_id}`, request ids, security headers and graceful
//! shutdown. Must not own: any rule about recipients, works, traces or who
//! may do what; those are the library's ([`earmark::permitted`] decides
//! every authorisation).

#![forbid(unsafe_code)]

use std::future::Future;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use earmark::{permitted, Action, ErrorKind, Home, User};
use tower_http::set_header::SetResponseHeaderLayer;

/// The header carrying each request's id, in the request (if the caller
/// sets one) and in every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The HTTP status for a kind of failure: the service's one table.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Usage | ErrorKind::BadAudio | ErrorKind::BadText => StatusCode::BAD_REQUEST,
        ErrorKind::BadRecipients => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooLittleSignal => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::UnknownWork => StatusCode::NOT_FOUND,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
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
    fn forbidden(user: &User, action: Action) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "{} {} may not {action:?}",
                user.role.as_str(),
                earmark::terminal_safe(&user.name)
            ),
            kind: "forbidden".into(),
        }
    }

    /// A body that is not the JSON the route takes.
    fn bad_body(rejection: JsonRejection) -> Self {
        ApiError {
            status: rejection.status(),
            message: rejection.body_text().replace('\n', " "),
            kind: "usage".into(),
        }
    }

    fn unauthorized(message: &str) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            kind: "unauthorized".into(),
        }
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

/// The signed-in user of a request, from its bearer token.
pub struct Caller(pub User);

impl FromRequestParts<Home> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, home: &Home) -> Result<Self, ApiError> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("a bearer token is needed"))?;
        let user = home.authenticate_token(secret.trim()).await?;
        Ok(Caller(user))
    }
}

impl Caller {
    /// The caller, if their role may do `action`.
    fn may(&self, action: Action) -> Result<&User, ApiError> {
        if permitted(self.0.role, action) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(&self.0, action))
        }
    }
}

/// A recipient to add.
#[derive(serde::Deserialize)]
struct NewRecipient {
    name: String,
    email: Option<String>,
    org: Option<String>,
}

async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route {}", uri.path()),
        kind: "not-found".into(),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn recipients(State(home): State<Home>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadRecipients)?;
    Ok(Json(home.recipients().await?).into_response())
}

async fn add_recipient(
    State(home): State<Home>,
    caller: Caller,
    body: Result<Json<NewRecipient>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageRecipients)?;
    let Json(new) = body.map_err(ApiError::bad_body)?;
    let added = home
        .add_recipient(&new.name, new.email.as_deref(), new.org.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn works(State(home): State<Home>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadWorks)?;
    Ok(Json(home.works().await?).into_response())
}

async fn audit(State(home): State<Home>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(home.audit_log().await?).into_response())
}

async fn audit_verify(State(home): State<Home>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(home.audit_verify().await?).into_response())
}

/// The routes, every one but `/healthz` behind a bearer token.
pub fn router(home: Home) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/recipients", get(recipients).post(add_recipient))
        .route("/api/v1/works", get(works))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(audit_verify))
        .fallback(no_such_route)
        .with_state(home)
        .layer(axum::middleware::from_fn(request_id))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Gives each request an id (the caller's, if it is a short token of
/// letters, digits and dashes; else 16 random hex digits), logs the request
/// inside a span carrying it, returns it in a header and puts it into a
/// JSON error body.
async fn request_id(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let _entered = span.enter();
    tracing::info!(status = %response.status(), "answered");
    let mut response = with_request_id_in_body(response, &id).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A JSON error body with its `request_id` filled in; other responses as
/// they are.
async fn with_request_id_in_body(response: Response, id: &str) -> Response {
    if response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut value) if value.get("error").is_some() => {
            value["request_id"] = serde_json::Value::String(id.to_string());
            serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    // A request id needs to be unique, not secret: a clock fallback will do.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            .to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves `home` on `listener` until `shutdown` completes; requests under
/// way finish first.
pub async fn serve(
    home: Home,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(home))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn termination() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
