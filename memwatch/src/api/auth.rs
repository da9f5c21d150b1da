//! Bearer tokens for the TCP listener.
use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

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
pub struct Token {
    expected: Option<Arc<str>>,
    refusals: Arc<Mutex<RefusalLog>>,
}

/// Refusals are logged at most once per `REFUSAL_LOG_EVERY`, with how many
/// were not: a client hammering a wrong token must not flood the journal.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    /// `Some(suppressed since the last line)` when a line is due now.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Token {
    pub fn none() -> Self {
        Self { expected: None, refusals: Arc::default() }
    }

    pub fn new(token: &str) -> Self {
        Self { expected: Some(Arc::from(token)), refusals: Arc::default() }
    }

    /// Reads the token file, with the rules `check-config` applies
    /// (`config::files::read_token_file`): one line, in a private file.
    pub fn load(path: &Path) -> Result<Self, String> {
        crate::config::files::read_token_file(path).map(|token| Self::new(&token))
    }

    /// Constant time in the token's content (subtle); only a length
    /// mismatch returns early, which tells an attacker nothing useful.
    fn accepts(&self, presented: &str) -> bool {
        self.expected.as_deref().is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
    }
}

/// The credentials of a `Bearer` Authorization header; the scheme is
/// case-insensitive (RFC 9110 11.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    let reason = match presented {
        Some(p) if token.accepts(p) => return next.run(request).await,
        Some(_) => "wrong token",
        None => "missing token",
    };
    let due = token.refusals.lock().unwrap_or_else(PoisonError::into_inner).due(Instant::now());
    if let Some(suppressed) = due {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
        tracing::warn!(
            method = %request.method(),
            path = %request.uri().path(),
            peer = peer.as_deref().unwrap_or("unknown"),
            suppressed,
            "API request refused: {reason}"
        );
    }
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
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer s3cret"), Some("s3cret"), "the scheme is case-insensitive");
        assert_eq!(bearer("BEARER  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic s3cret"), None);
        assert_eq!(bearer("Bearer"), None);
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let private = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        assert!(Token::load(&private("t", "abc\n")).unwrap().accepts("abc"));
        assert!(Token::load(&private("e", " \n")).is_err());
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_period_with_a_count_of_the_rest() {
        let mut log = RefusalLog::default();
        let start = Instant::now();
        assert_eq!(log.due(start), Some(0));
        for i in 1..=50 {
            assert_eq!(log.due(start + Duration::from_millis(i)), None);
        }
        assert_eq!(log.due(start + REFUSAL_LOG_EVERY), Some(50));
    }
}
