//! Who is calling: the user of a request's bearer token, and whether
//! their role allows what the route does ([`earmark::permitted`]).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use earmark::{permitted, Action, User};

use crate::{ApiError, Service};

/// The signed-in user of a request, from its bearer token.
pub struct Caller(pub User);

impl FromRequestParts<Service> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, ApiError> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("a bearer token is needed"))?;
        let user = service.home.authenticate_token(secret.trim()).await?;
        Ok(Caller(user))
    }
}

impl Caller {
    /// The caller, if their role may do `action`.
    pub(crate) fn may(&self, action: Action) -> Result<&User, ApiError> {
        if permitted(self.0.role, action) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(&self.0, action))
        }
    }
}
