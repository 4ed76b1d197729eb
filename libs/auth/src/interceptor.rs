//! The tonic side: every service checks the forwarded token again.

use tonic::{Request, Status, metadata::MetadataValue, service::Interceptor};

use crate::{AuthError, Principal, Verifier};

/// Verifies `authorization: Bearer <jwt>` and stores the [`Principal`] in the
/// request extensions.
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: Verifier,
}

impl AuthInterceptor {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let principal = self.verifier.verify_bearer(header)?;
        req.extensions_mut().insert(principal);
        Ok(req)
    }
}

/// The verified caller of a request that passed [`AuthInterceptor`].
pub fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions().get::<Principal>().cloned().ok_or_else(|| {
        tracing::error!("gRPC handler reached without the auth interceptor");
        jiesu_proto::status::internal()
    })
}

/// Forwards a caller's token on an outgoing request.
pub fn bearer_metadata<T>(req: &mut Request<T>, token: &str) -> Result<(), Status> {
    let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        jiesu_proto::status::unauthenticated("malformed_token", AuthError::Malformed.text())
    })?;
    req.metadata_mut().insert("authorization", value);
    Ok(())
}
