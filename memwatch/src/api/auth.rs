//! Bearer tokens for the TCP listener.
use std::{net::SocketAddr, path::Path, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;

/// The expected token; None when no token file is configured, in which case
/// every protected request is refused (fail closed).
#[derive(Clone)]
pub struct Token(Option<Arc<str>>);

impl Token {
    pub fn none() -> Self {
        Self(None)
    }

    pub fn new(token: &str) -> Self {
        Self(Some(Arc::from(token)))
    }

    /// Reads the token file; surrounding whitespace (a trailing newline) is not part of it.
    pub fn load(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the token file is empty"));
        }
        Ok(Self::new(token))
    }

    /// Constant time in the token's content (subtle); only a length
    /// mismatch returns early, which tells an attacker nothing useful.
    fn accepts(&self, presented: &str) -> bool {
        self.0.as_deref().is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
    }
}

pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let reason = match presented {
        Some(p) if token.accepts(p.trim()) => return next.run(request).await,
        Some(_) => "wrong token",
        None => "missing token",
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
    tracing::warn!(
        method = %request.method(),
        path = %request.uri().path(),
        peer = peer.as_deref().unwrap_or("unknown"),
        "API request refused: {reason}"
    );
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, format!("unauthorized: {reason}")).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_no_token_file_accepts_nothing() {
        let t = Token::new("s3cret");
        assert!(t.accepts("s3cret"));
        assert!(!t.accepts("s3cre"));
        assert!(!t.accepts("s3cret2"));
        assert!(!t.accepts(""));
        assert!(!Token::none().accepts(""));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "abc\n").unwrap();
        assert!(Token::load(&dir.path().join("t")).unwrap().accepts("abc"));
        std::fs::write(dir.path().join("e"), " \n").unwrap();
        assert!(Token::load(&dir.path().join("e")).is_err());
    }
}
