use tonic::Status;

/// Why a caller was refused. Every variant but `Forbidden` is a 401.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("token has no key id (kid)")]
    MissingKeyId,
    #[error("token key id is not known")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token claim `{0}` is missing or malformed")]
    BadClaim(String),
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    /// Stable machine code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::Malformed => "malformed_token",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKey => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::BadClaim(_) => "bad_claim",
            Self::Forbidden(_) => "forbidden",
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Forbidden(_))
    }
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        if e.is_forbidden() {
            jiesu_proto::status::permission_denied(e.to_string())
        } else {
            jiesu_proto::status::unauthenticated(e.code(), e.to_string())
        }
    }
}
