//! earmark's team service: the HTTP API over the `earmark` library and
//! its job queue.
//!
//! Owns: routing, bearer-token authentication (through
//! [`earmark::Home::authenticate_token`]), turning the library's
//! [`earmark::ErrorKind`] into an HTTP status and a JSON error
//! `{error, kind, request_id}`, streaming uploads to the spool with a size
//! bound, request ids, security headers, the OpenAPI document and graceful
//! shutdown. Must not own: any rule about recipients, works, traces or who
//! may do what; those are the library's ([`earmark::permitted`] decides
//! every authorisation), and traces and marks run as jobs
//! ([`earmark_jobs`]), never inside a request.

#![forbid(unsafe_code)]

mod auth;
mod error;
mod routes;
mod upload;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use earmark::Home;
use earmark_jobs::Jobs;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use auth::Caller;
pub use earmark_jobs::DEFAULT_UPLOAD_LIMIT_BYTES;
pub use error::{status_of, ApiError};
pub use upload::FILE_FIELD;

/// The header carrying each request's id, in the request (if the caller
/// sets one) and in every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The largest CSV of recipients taken, bytes.
const MAX_CSV_BYTES: usize = 16 << 20;
/// Room for a multipart body's boundaries and text fields beyond its file.
const MULTIPART_OVERHEAD_BYTES: u64 = 1 << 20;

/// What every handler shares: the home, its job queue and the settings.
#[derive(Clone)]
pub struct Service {
    home: Home,
    jobs: Jobs,
    upload_limit_bytes: u64,
}

impl Service {
    /// The service of `home` and its queue `jobs`, taking uploads of at
    /// most `upload_limit_bytes`.
    pub fn new(jobs: Jobs, upload_limit_bytes: u64) -> Service {
        Service {
            home: jobs.home().clone(),
            jobs,
            upload_limit_bytes,
        }
    }
}

/// The API's description; the paths come from the handlers themselves.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "earmark",
        description = "Leak tracing for sensitive audio: recipients, works, marks and traces for a team. Every route but /healthz and this document needs `Authorization: Bearer <token>` (`earmark token create`)."
    ),
    modifiers(&BearerTokens),
    tags(
        (name = "service"), (name = "recipients"), (name = "works"),
        (name = "traces"), (name = "links"), (name = "audit")
    )
)]
struct ApiDoc;

/// The `bearer` security scheme the routes name.
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// `routes` with `layer` on each of its methods.
fn layered(
    (schemas, paths, methods): UtoipaMethodRouter<Service>,
    layer: DefaultBodyLimit,
) -> UtoipaMethodRouter<Service> {
    (schemas, paths, methods.layer(layer))
}

/// Every route, each registered with its OpenAPI description: a route
/// cannot be served without being in the document, nor described without
/// being served.
fn api_routes(upload_limit_bytes: u64) -> OpenApiRouter<Service> {
    let upload_body = DefaultBodyLimit::max(
        usize::try_from(upload_limit_bytes.saturating_add(MULTIPART_OVERHEAD_BYTES))
            .unwrap_or(usize::MAX),
    );
    use routes::{audit, links, recipients, traces, works};
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::openapi))
        .routes(routes!(recipients::recipients, recipients::add_recipient))
        .routes(layered(
            routes!(recipients::import_recipients),
            DefaultBodyLimit::max(MAX_CSV_BYTES),
        ))
        .routes(layered(routes!(works::works, works::add_work), upload_body))
        .routes(routes!(works::work))
        .routes(routes!(works::add_mark))
        .routes(routes!(works::mark_job))
        .routes(layered(routes!(traces::add_trace), upload_body))
        .routes(routes!(traces::trace_job))
        .routes(routes!(links::add_deliveries))
        .routes(routes!(links::links))
        .routes(routes!(links::revoke_link))
        .routes(routes!(links::downloads))
        .routes(routes!(links::download))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::audit_verify))
}

/// The OpenAPI document of every route, as `/api/v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| api_routes(DEFAULT_UPLOAD_LIMIT_BYTES).into_openapi())
        .clone()
}

/// The routes, every one but `/healthz` and the OpenAPI document behind a
/// bearer token.
pub fn router(service: Service) -> Router {
    let (routes, _document) = api_routes(service.upload_limit_bytes).split_for_parts();
    routes
        .fallback(routes::no_such_route)
        .with_state(service)
        .layer(axum::middleware::from_fn(request_id))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
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
    let path = loggable_path(request.uri().path());
    let span =
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %path);
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let _entered = span.enter();
    tracing::info!(status = %response.status(), "answered");
    let mut response = with_request_id_in_body(response, &id).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// `path` as it may be logged: a delivery link's secret is not (it is
/// kept only as its hash, even in logs).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(DOWNLOAD_PREFIX) {
        Some(_) => format!("{DOWNLOAD_PREFIX}…").into(),
        None => path.into(),
    }
}

/// Where delivery links are fetched: `/d/<secret>`.
const DOWNLOAD_PREFIX: &str = "/d/";

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

/// Serves `jobs`' home on `listener` until `shutdown` completes, with a
/// worker running jobs in the same process when `worker` is given.
/// Requests under way finish first; jobs under way are run again by the
/// next worker.
pub async fn serve(
    service: Service,
    listener: tokio::net::TcpListener,
    worker: Option<earmark_jobs::WorkerOptions>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = worker.map(|options| {
        let jobs = service.jobs.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = jobs.run_worker(options, until).await {
                tracing::error!(error = %e, "the worker stopped");
            }
        })
    });
    let mut stopped_http = stopped;
    let app = router(service).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown => {},
                _ = stopped_http.wait_for(|s| *s) => {},
            }
        })
        .await;
    let _ = stop.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    served
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
