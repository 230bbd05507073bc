//! The audit chain, for auditors.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use earmark::Action;

use crate::routes::ErrorBody;
use crate::{ApiError, Caller, Service};

/// The audit log, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every audit row"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn audit(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(service.home.audit_log().await?).into_response())
}

/// The full check of the chain, every record a verdict relies on and
/// every stored master (`earmark audit verify`).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{intact, rows, records, problem}`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn audit_verify(
    State(service): State<Service>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit)?;
    Ok(Json(service.home.audit_verify().await?).into_response())
}
