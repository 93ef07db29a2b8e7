//! The one error type of callhook and its single mapping to an HTTP status and JSON body.
//!
//! Every message is one sentence a sender's developer can act on. Messages never contain secrets,
//! signatures or tokens, and never echo payload values (they may be personal data): they name the
//! field or header that was wrong, not what it held.

use std::fmt;

/// Why a request failed authentication. Kept coarse on purpose: the response tells a legitimate
/// sender what to fix without helping a forger tell a near miss from a far one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The signature header (or `?token=`) is absent or empty.
    MissingCredential,
    /// A header the scheme needs is present but not in the scheme's format.
    MalformedCredential,
    /// No configured secret or token matches.
    BadCredential,
    /// The signed timestamp is outside the allowed tolerance.
    StaleTimestamp,
}

impl AuthFailure {
    fn sentence(self) -> &'static str {
        match self {
            Self::MissingCredential => "The request carries no signature or token.",
            Self::MalformedCredential => {
                "The signature headers are not in the format the provider's scheme requires."
            }
            Self::BadCredential => "The signature or token does not match any configured secret.",
            Self::StaleTimestamp => {
                "The signed timestamp is too far from the current time (more than 300 seconds)."
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The route names a provider callhook does not know or that is not configured.
    #[error("Provider `{0}` is not configured on this endpoint.")]
    UnknownProvider(String),

    /// The request was not authenticated; nothing was written.
    #[error("{}", .0.sentence())]
    Unauthorized(AuthFailure),

    /// The body exceeds the configured limit.
    #[error("The request body is {size} bytes, more than the {limit}-byte limit.")]
    PayloadTooLarge { size: usize, limit: usize },

    /// The request or its body is not well-formed (not JSON, not an object, bad encoding).
    #[error("{0}")]
    Malformed(String),

    /// The body is well-formed JSON and authenticated, but not a usable event (for example the
    /// call id is missing or a field has the wrong type).
    #[error("{0}")]
    Unusable(String),

    /// The HTTP method is not allowed on the route.
    #[error("Only POST is accepted on this route.")]
    MethodNotAllowed,

    /// The configuration is invalid; raised at start-up, never on a request path.
    #[error("Invalid configuration: {0}")]
    Config(String),

    /// A storage call failed. Its kind says whether trying again can help.
    #[error("Storage failed ({}): {}", .0.kind.as_str(), .0.detail)]
    Storage(StorageError),

    /// A bug or an invariant violation; never caused by input alone.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error answers with. The single place this mapping is made.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::UnknownProvider(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::Unusable(_) => 422,
            Self::Storage(e) if e.kind == StorageKind::Rejected => 500,
            Self::Storage(_) => 503,
            Self::Config(_) | Self::Internal(_) => 500,
        }
    }

    /// The stable machine-readable code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "unknown_provider",
            Self::Unauthorized(_) => "unauthorized",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Malformed(_) => "malformed_request",
            Self::Unusable(_) => "unusable_payload",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Config(_) => "configuration_error",
            Self::Storage(e) if e.kind == StorageKind::Rejected => "storage_rejected",
            Self::Storage(_) => "storage_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Whether retrying the same input later can succeed. Decides 5xx vs 4xx for senders and
    /// retry (an invocation error) vs. a recorded failure for the merge functions.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.kind.is_retryable(),
            Self::Internal(_) => true,
            _ => false,
        }
    }

    /// A storage failure of the given kind.
    pub fn storage(kind: StorageKind, detail: impl fmt::Display) -> Self {
        Self::Storage(StorageError {
            kind,
            detail: detail.to_string(),
        })
    }

    /// The storage failure's kind, when this is one.
    pub fn storage_kind(&self) -> Option<StorageKind> {
        match self {
            Self::Storage(e) => Some(e.kind),
            _ => None,
        }
    }

    /// The JSON body `{"error": code, "message": sentence}`. Storage and internal details stay in
    /// the log; the sender only learns that it should retry.
    pub fn body(&self) -> String {
        let message = match self {
            Self::Storage(e) if e.kind == StorageKind::Rejected => {
                "The event could not be stored.".to_owned()
            }
            Self::Storage(_) => "The event could not be stored; retry later.".to_owned(),
            Self::Internal(_) | Self::Config(_) => {
                "callhook failed to process the request; retry later.".to_owned()
            }
            other => other.to_string(),
        };
        serde_json::json!({ "error": self.code(), "message": message }).to_string()
    }

    pub(crate) fn malformed(msg: impl fmt::Display) -> Self {
        Self::Malformed(msg.to_string())
    }

    pub(crate) fn unusable(msg: impl fmt::Display) -> Self {
        Self::Unusable(msg.to_string())
    }
}

/// What kind of storage failure happened: retry decisions are derived from it, never from a
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageKind {
    /// The service did not answer in time, was unreachable, or answered 5xx: try again.
    Transient,
    /// The service refused for capacity (throttling, request limit): try again, slower.
    Throttled,
    /// Concurrent writers kept changing the item: try again later.
    Conflict,
    /// The service refused the request itself (validation, item too large, missing table,
    /// access denied): the same request will fail the same way.
    Rejected,
}

impl StorageKind {
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Rejected)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
        }
    }
}

/// A storage failure: its kind and the service's own words (for the log, never for senders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageKind,
    pub detail: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and each of its sources, in one line (`a: b: c`), each said once (a source whose
/// words its error already repeats is left out), cut at `max_chars`.
pub fn with_sources(error: &(dyn std::error::Error + 'static), max_chars: usize) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = next.source();
    }
    if line.len() > max_chars {
        line = line.chars().take(max_chars).collect();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_documented_status_and_code() {
        let cases = [
            (
                Error::Malformed("The body is bad.".into()),
                400,
                "malformed_request",
            ),
            (
                Error::Unauthorized(AuthFailure::BadCredential),
                401,
                "unauthorized",
            ),
            (
                Error::UnknownProvider("acme".into()),
                404,
                "unknown_provider",
            ),
            (Error::MethodNotAllowed, 405, "method_not_allowed"),
            (
                Error::PayloadTooLarge { size: 2, limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                Error::Unusable("The call id is missing.".into()),
                422,
                "unusable_payload",
            ),
            (
                Error::storage(StorageKind::Transient, "timeout"),
                503,
                "storage_unavailable",
            ),
            (
                Error::storage(StorageKind::Throttled, "slow down"),
                503,
                "storage_unavailable",
            ),
            (
                Error::storage(StorageKind::Rejected, "item too large"),
                500,
                "storage_rejected",
            ),
            (Error::Internal("bug".into()), 500, "internal_error"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status(), status, "{error:?}");
            assert_eq!(error.code(), code);
            let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
            assert_eq!(body["error"], code);
            let message = body["message"].as_str().unwrap();
            assert!(message.ends_with('.'), "one sentence: {message}");
            let rejected = error.storage_kind() == Some(StorageKind::Rejected);
            assert_eq!(error.is_retryable(), status >= 500 && !rejected);
        }
    }

    #[test]
    fn storage_details_stay_out_of_the_response() {
        let error = Error::storage(
            StorageKind::Transient,
            "dispatch failure to https://internal-host:8000",
        );
        assert!(!error.body().contains("internal-host"));
    }
}
