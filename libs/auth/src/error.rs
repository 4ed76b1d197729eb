use jiesu_common::{Text, tr};
use tonic::Status;

/// Why a caller was refused. Every variant but `Forbidden` is a 401.
///
/// [`AuthError::text`] is what the caller reads, in both languages;
/// `Display` is its English, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    MissingToken,
    Malformed,
    AlgorithmNotAllowed,
    MissingKeyId,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// The named claim is missing or malformed.
    BadClaim(String),
    Forbidden(Text),
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

    /// What the caller reads.
    pub fn text(&self) -> Text {
        match self {
            Self::MissingToken => tr!("缺少 Bearer 令牌", "missing bearer token"),
            Self::Malformed => tr!("令牌格式不正确", "malformed token"),
            Self::AlgorithmNotAllowed => {
                tr!("令牌的签名算法不被接受", "token algorithm is not allowed")
            }
            Self::MissingKeyId => tr!("令牌缺少密钥编号（kid）", "token has no key id (kid)"),
            Self::UnknownKey => tr!("令牌的密钥编号（kid）未知", "token key id is not known"),
            Self::BadSignature => tr!("令牌签名无效", "token signature is invalid"),
            Self::Expired => tr!("令牌已过期", "token has expired"),
            Self::NotYetValid => tr!("令牌尚未生效", "token is not valid yet"),
            Self::WrongIssuer => tr!("令牌的签发方不被接受", "token issuer is not accepted"),
            Self::WrongAudience => tr!(
                "令牌的受众（aud）不被接受",
                "token audience is not accepted"
            ),
            Self::BadClaim(claim) => tr!(
                "令牌声明 `{claim}` 缺失或格式不正确",
                "token claim `{claim}` is missing or malformed"
            ),
            Self::Forbidden(text) => text.clone(),
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Forbidden(_))
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text().en)
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        if e.is_forbidden() {
            jiesu_proto::status::permission_denied(e.text())
        } else {
            jiesu_proto::status::unauthenticated(e.code(), e.text())
        }
    }
}
