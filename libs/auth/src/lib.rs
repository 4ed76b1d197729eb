//! Identity for every Jiesu service.
//!
//! Owns: JWT verification against a JWKS (file or URL, refreshed, `kid`
//! rotation) with a fixed algorithm allow-list and required `exp`/`iss`/`aud`;
//! the claims and roles of DESIGN.md as a verified [`Principal`]; region-scope
//! checks ([`Region`]); the tonic interceptor every gRPC service installs; the
//! local development signer behind `jiesu token`.
//!
//! Never: trusts a header it did not verify, accepts symmetric keys from a
//! JWKS, or logs a token.

mod claims;
mod dev;
mod error;
mod interceptor;
mod jwks;
mod region;
mod verifier;

pub use claims::{Principal, Role, WireClaims, needs_role};
pub use dev::{DevSigner, TokenSpec, generate_dev_key_pem};
pub use error::AuthError;
pub use interceptor::{AuthInterceptor, bearer_metadata, principal};
pub use jwks::parse_jwks;
pub use region::{Region, RegionError};
pub mod service_key;
pub use verifier::{AuthConfig, Verifier};
