//! Webhook authentication: the secret type, the supported schemes (HMAC-SHA256 over the raw body,
//! Standard Webhooks, a shared `?token=`, or none), verification of an incoming request on its
//! exact raw bytes before any parsing, and signing for our own senders (the CLI `send`, tests).
//!
//! Security rules this module keeps:
//! - every comparison against secret-derived material is constant-time (`subtle`), after a
//!   public length check; an empty signature or token never passes;
//! - several secrets or tokens may be active at once (rotation): any one of them passes;
//! - no secret, token or signature appears in an error message or in `Debug` output.
//!
//! How failures are classified (all are `Error::Unauthorized`):
//! - `MissingCredential`: a header the scheme needs (or `?token=`) is absent or blank;
//! - `MalformedCredential`: a needed header is present but is not readable text, or the Standard
//!   Webhooks timestamp is not an integer;
//! - `BadCredential`: a signature or token was given but is not a match, whatever the reason
//!   (wrong prefix, not hex, not base64, wrong length, empty after the prefix, wrong version,
//!   wrong secret). Kept as one answer on purpose, so a forger learns nothing from near misses;
//! - `StaleTimestamp`: the Standard Webhooks timestamp is more than
//!   [`DEFAULT_TOLERANCE_SECS`] away from the injected clock.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::error::{AuthFailure, Error};

/// How far (in seconds, either direction) a Standard Webhooks timestamp may be from now.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The Standard Webhooks header carrying the message id.
const WEBHOOK_ID: &str = "webhook-id";
/// The Standard Webhooks header carrying the Unix timestamp in seconds.
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The Standard Webhooks header carrying the space-separated signature entries.
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// The prefix of Standard Webhooks secrets.
const WHSEC_PREFIX: &[u8] = b"whsec_";
/// The only Standard Webhooks signature version accepted.
const SIGNATURE_VERSION: &str = "v1";
/// Length of an HMAC-SHA256 tag in bytes.
const TAG_LEN: usize = 32;

/// Base64 for configured secrets: the standard alphabet, padding optional (operators copy keys
/// by hand). Signature entries in requests use strict [`STANDARD`].
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Secret key material. Debug prints `Secret(***)`; no Display. Holds raw bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes. Never log or format them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parses a comma-separated list of secrets or tokens (an environment value): items are trimmed
/// and empty items dropped.
#[must_use]
pub fn parse_list(value: &str) -> Vec<Secret> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(Secret::new)
        .collect()
}

/// How a provider authenticates its webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC-SHA256 over the raw body, hex digest in `header` after `prefix` (ClawOps: header
    /// "X-ClawOps-Signature", prefix "sha256="). The secret string's UTF-8 bytes are the key (as
    /// ClawOps' docs do: `hmac.new(SECRET.encode(), body, sha256)`).
    HmacSha256 { header: HeaderName, prefix: String },
    /// Standard Webhooks (standardwebhooks.com): headers `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`; signed content is `{id}.{timestamp}.{body}`; the signature header is a
    /// space-separated list of `v1,<base64>` entries (other versions are ignored); secrets are
    /// `whsec_<base64>` (or bare base64); tolerance ±[`DEFAULT_TOLERANCE_SECS`].
    StandardWebhooks,
    /// Shared token in the query string `?token=`.
    Token,
    /// Explicitly configured: no authentication.
    None,
}

impl Scheme {
    /// Parses a configured scheme name: `hmac-sha256`, `standard-webhooks`, `token` or `none`
    /// (case-insensitive, trimmed). For `hmac-sha256` the header and prefix are the given
    /// defaults (the provider's documented ones).
    pub fn parse(name: &str, default_header: &str, default_prefix: &str) -> Result<Scheme, Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "hmac-sha256" => {
                let header =
                    HeaderName::from_bytes(default_header.trim().as_bytes()).map_err(|_| {
                        Error::Config(
                        "the signature header name for hmac-sha256 is not a valid HTTP header name"
                            .to_owned(),
                    )
                    })?;
                Ok(Scheme::HmacSha256 {
                    header,
                    prefix: default_prefix.to_owned(),
                })
            }
            "standard-webhooks" => Ok(Scheme::StandardWebhooks),
            "token" => Ok(Scheme::Token),
            "none" => Ok(Scheme::None),
            // The value is not echoed: a misplaced secret must not reach a log.
            _ => Err(Error::Config(
                "the auth scheme must be one of hmac-sha256, standard-webhooks, token or none"
                    .to_owned(),
            )),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Scheme::HmacSha256 { .. } => "hmac-sha256",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Token => "token",
            Scheme::None => "none",
        }
    }
}

/// Verifies incoming requests (and signs outgoing ones) for one provider.
///
/// For Standard Webhooks `secrets` holds the base64-decoded keys, not the `whsec_` strings.
pub struct Verifier {
    pub scheme: Scheme,
    secrets: Vec<Secret>,
    tokens: Vec<Secret>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &self.secrets.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Standard Webhooks: the `webhook-id` (lets callers dedupe redeliveries); otherwise `None`.
    pub delivery_id: Option<String>,
}

/// What a sender must attach to a request. Debug prints header names, never values.
#[derive(Clone)]
pub enum Signature {
    Headers(Vec<(HeaderName, String)>),
    QueryToken(String),
    Nothing,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::Headers(headers) => {
                struct Redacted<'a>(&'a HeaderName);
                impl fmt::Debug for Redacted<'_> {
                    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{}: ***", self.0)
                    }
                }
                f.debug_tuple("Headers")
                    .field(&headers.iter().map(|(n, _)| Redacted(n)).collect::<Vec<_>>())
                    .finish()
            }
            Signature::QueryToken(_) => f.write_str("QueryToken(***)"),
            Signature::Nothing => f.write_str("Nothing"),
        }
    }
}

fn unauthorized(failure: AuthFailure) -> Error {
    Error::Unauthorized(failure)
}

/// HMAC-SHA256 of the concatenated parts. `None` only if the MAC rejects the key, which HMAC
/// never does (any key length is valid); `Verifier::new` checks it anyway.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; TAG_LEN]> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

/// Constant-time equality of a candidate with an expected tag; the length check is public.
fn tag_matches(expected: &[u8; TAG_LEN], candidate: &[u8]) -> bool {
    candidate.len() == TAG_LEN && bool::from(expected.as_slice().ct_eq(candidate))
}

/// The trimmed text of a header: `Missing` if absent or blank, `Malformed` if not visible ASCII.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Error> {
    let value = headers
        .get(name)
        .ok_or(unauthorized(AuthFailure::MissingCredential))?;
    if value.as_bytes().iter().all(u8::is_ascii_whitespace) {
        return Err(unauthorized(AuthFailure::MissingCredential));
    }
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| unauthorized(AuthFailure::MalformedCredential))
}

impl Verifier {
    /// Errors (`Error::Config`) if the scheme needs secrets (hmac, standard-webhooks) or tokens
    /// (token) and none are given, if one of them is empty, if a standard-webhooks secret is not
    /// valid base64, or if a token is not UTF-8. Several secrets/tokens may be active at once
    /// (rotation): any valid one passes. Secrets given to the token scheme, tokens given to the
    /// signature schemes, and both given to `none`, are ignored.
    pub fn new(scheme: Scheme, secrets: Vec<Secret>, tokens: Vec<Secret>) -> Result<Self, Error> {
        let name = scheme.name();
        let (secrets, tokens) = match &scheme {
            Scheme::HmacSha256 { .. } => (Self::check_secrets(name, secrets)?, Vec::new()),
            Scheme::StandardWebhooks => {
                let secrets = secrets
                    .iter()
                    .map(|secret| {
                        let raw = secret.expose();
                        let encoded = raw.strip_prefix(WHSEC_PREFIX).unwrap_or(raw);
                        SECRET_BASE64.decode(encoded).map(Secret).map_err(|_| {
                            Error::Config(format!(
                                "a {name} secret is not valid base64 after its whsec_ prefix"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (Self::check_secrets(name, secrets)?, Vec::new())
            }
            Scheme::Token => {
                if tokens.is_empty() {
                    return Err(Error::Config(format!(
                        "the {name} auth scheme needs at least one token"
                    )));
                }
                for token in &tokens {
                    if token.expose().is_empty() {
                        return Err(Error::Config(format!("a {name} token is empty")));
                    }
                    if std::str::from_utf8(token.expose()).is_err() {
                        return Err(Error::Config(format!("a {name} token is not valid UTF-8")));
                    }
                }
                (Vec::new(), tokens)
            }
            Scheme::None => (Vec::new(), Vec::new()),
        };
        Ok(Self {
            scheme,
            secrets,
            tokens,
        })
    }

    /// Checks that signing keys are present, non-empty and accepted by the MAC.
    fn check_secrets(name: &str, secrets: Vec<Secret>) -> Result<Vec<Secret>, Error> {
        if secrets.is_empty() {
            return Err(Error::Config(format!(
                "the {name} auth scheme needs at least one secret"
            )));
        }
        for secret in &secrets {
            if secret.expose().is_empty() {
                return Err(Error::Config(format!("a {name} secret is empty")));
            }
            if HmacSha256::new_from_slice(secret.expose()).is_err() {
                return Err(Error::Config(format!(
                    "a {name} secret is not usable as an HMAC key"
                )));
            }
        }
        Ok(secrets)
    }

    /// Verify on the exact raw bytes, before any parsing. `now_unix_secs` is the injected clock.
    /// `query_token` is the decoded value of `?token=` if present.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<Verified, Error> {
        match &self.scheme {
            Scheme::HmacSha256 { header, prefix } => {
                self.verify_hmac(headers, header, prefix, body)?;
                Ok(Verified { delivery_id: None })
            }
            Scheme::StandardWebhooks => self.verify_standard(headers, body, now_unix_secs),
            Scheme::Token => {
                self.verify_token(query_token)?;
                Ok(Verified { delivery_id: None })
            }
            Scheme::None => Ok(Verified { delivery_id: None }),
        }
    }

    fn verify_hmac(
        &self,
        headers: &HeaderMap,
        header: &HeaderName,
        prefix: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        let bad = || unauthorized(AuthFailure::BadCredential);
        let value = header_text(headers, header.as_str())?;
        let hex_digest = value.strip_prefix(prefix).ok_or_else(bad)?;
        // Public length check before decoding; catches the empty `sha256=` too.
        if hex_digest.len() != TAG_LEN * 2 {
            return Err(bad());
        }
        let candidate = hex::decode(hex_digest).map_err(|_| bad())?;
        for secret in &self.secrets {
            let expected = hmac_sha256(secret.expose(), &[body])
                .ok_or_else(|| Error::Internal("the HMAC key was rejected".to_owned()))?;
            if tag_matches(&expected, &candidate) {
                return Ok(());
            }
        }
        Err(bad())
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<Verified, Error> {
        let id = header_text(headers, WEBHOOK_ID)?;
        let timestamp_text = header_text(headers, WEBHOOK_TIMESTAMP)?;
        let signatures = header_text(headers, WEBHOOK_SIGNATURE)?;

        let timestamp: i64 = timestamp_text
            .parse()
            .map_err(|_| unauthorized(AuthFailure::MalformedCredential))?;
        // abs_diff cannot overflow, whatever the two values.
        if now_unix_secs.abs_diff(timestamp) > DEFAULT_TOLERANCE_SECS.unsigned_abs() {
            return Err(unauthorized(AuthFailure::StaleTimestamp));
        }

        // Signed content uses the canonical integer, as the reference libraries do.
        let timestamp = timestamp.to_string();
        let expected = self
            .secrets
            .iter()
            .map(|key| {
                hmac_sha256(
                    key.expose(),
                    &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
                )
                .ok_or_else(|| Error::Internal("the HMAC key was rejected".to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let matched = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == SIGNATURE_VERSION)
            // An empty entry (`v1,`) decodes to nothing and fails the length check.
            .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
            .any(|candidate| expected.iter().any(|tag| tag_matches(tag, &candidate)));
        if matched {
            Ok(Verified {
                delivery_id: Some(id.to_owned()),
            })
        } else {
            Err(unauthorized(AuthFailure::BadCredential))
        }
    }

    fn verify_token(&self, query_token: Option<&str>) -> Result<(), Error> {
        let given = query_token
            .filter(|token| !token.is_empty())
            .ok_or(unauthorized(AuthFailure::MissingCredential))?;
        // Compare fixed-length digests, over every configured token without stopping early, so
        // neither the length nor the position of a near match shows in the timing.
        let given_digest = Sha256::digest(given.as_bytes());
        let mut matched = Choice::from(0);
        for token in &self.tokens {
            let digest = Sha256::digest(token.expose());
            matched |= digest.as_slice().ct_eq(given_digest.as_slice());
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(unauthorized(AuthFailure::BadCredential))
        }
    }

    /// Produce headers/query for a sender (used by our CLI `send` and tests): for hmac the header
    /// value (`<prefix><lowercase hex>`), for standard-webhooks the three headers given an id and
    /// timestamp, for token the token to put in the query. Uses the FIRST secret/token.
    /// `msg_id` and `timestamp_secs` are only used by standard-webhooks.
    #[must_use]
    pub fn sign(&self, body: &[u8], msg_id: &str, timestamp_secs: i64) -> Signature {
        match &self.scheme {
            Scheme::HmacSha256 { header, prefix } => {
                let Some(tag) = self
                    .secrets
                    .first()
                    .and_then(|key| hmac_sha256(key.expose(), &[body]))
                else {
                    return Signature::Nothing;
                };
                Signature::Headers(vec![(
                    header.clone(),
                    format!("{prefix}{}", hex::encode(tag)),
                )])
            }
            Scheme::StandardWebhooks => {
                let timestamp = timestamp_secs.to_string();
                let Some(tag) = self.secrets.first().and_then(|key| {
                    hmac_sha256(
                        key.expose(),
                        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
                    )
                }) else {
                    return Signature::Nothing;
                };
                Signature::Headers(vec![
                    (HeaderName::from_static(WEBHOOK_ID), msg_id.to_owned()),
                    (HeaderName::from_static(WEBHOOK_TIMESTAMP), timestamp),
                    (
                        HeaderName::from_static(WEBHOOK_SIGNATURE),
                        format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag)),
                    ),
                ])
            }
            Scheme::Token => match self.tokens.first() {
                Some(token) => {
                    Signature::QueryToken(String::from_utf8_lossy(token.expose()).into_owned())
                }
                None => Signature::Nothing,
            },
            Scheme::None => Signature::Nothing,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // ---- Standard Webhooks -------------------------------------------------------------------

    /// The published Standard Webhooks test vector.
    const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_TS: i64 = 1_649_367_553;
    const SW_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    /// A second key, for rotation; the signature below was computed with Python's `hmac`.
    const SW_NEW_SECRET: &str = "whsec_cm90YXRpb24tbmV3LWtleS0wMTIzNDU2Nzg5YWJjZGU=";
    const SW_NEW_SIG: &str = "v1,krIiWo2MOqKyJuSAnEfEbW31xXEbjOokVbZh1Bq/4Uo=";

    fn sw_verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(
            Scheme::StandardWebhooks,
            secrets.iter().map(|s| Secret::new(*s)).collect(),
            Vec::new(),
        )
        .unwrap()
    }

    fn sw_headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WEBHOOK_ID, HeaderValue::from_str(id).unwrap());
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from_str(ts).unwrap());
        headers.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(sig).unwrap());
        headers
    }

    fn vector_headers(sig: &str) -> HeaderMap {
        sw_headers(SW_ID, &SW_TS.to_string(), sig)
    }

    fn failure(result: Result<Verified, Error>) -> AuthFailure {
        match result {
            Err(Error::Unauthorized(failure)) => failure,
            other => panic!("expected an authentication failure, got {other:?}"),
        }
    }

    #[test]
    fn sw_published_vector_verifies_and_sign_reproduces_it() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let verified = verifier
            .verify(&vector_headers(SW_SIG), None, SW_BODY, SW_TS)
            .unwrap();
        assert_eq!(verified.delivery_id.as_deref(), Some(SW_ID));

        let Signature::Headers(headers) = verifier.sign(SW_BODY, SW_ID, SW_TS) else {
            panic!("standard-webhooks signs with headers");
        };
        let expected = [
            ("webhook-id", SW_ID.to_owned()),
            ("webhook-timestamp", SW_TS.to_string()),
            ("webhook-signature", SW_SIG.to_owned()),
        ];
        assert_eq!(headers.len(), expected.len());
        for ((name, value), (expected_name, expected_value)) in headers.iter().zip(expected) {
            assert_eq!(name.as_str(), expected_name);
            assert_eq!(*value, expected_value);
        }
    }

    #[test]
    fn sw_secret_without_whsec_prefix_is_accepted_as_base64() {
        let bare = SW_SECRET.trim_start_matches("whsec_");
        let verifier = sw_verifier(&[bare]);
        assert!(
            verifier
                .verify(&vector_headers(SW_SIG), None, SW_BODY, SW_TS)
                .is_ok()
        );
    }

    #[test]
    fn sw_timestamp_tolerance_is_300_seconds_inclusive() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let headers = vector_headers(SW_SIG);
        for offset in [0, 1, -1, 299, -299, 300, -300] {
            assert!(
                verifier
                    .verify(&headers, None, SW_BODY, SW_TS + offset)
                    .is_ok(),
                "offset {offset} must pass"
            );
        }
        for offset in [301, -301, 100_000, -100_000] {
            assert_eq!(
                failure(verifier.verify(&headers, None, SW_BODY, SW_TS + offset)),
                AuthFailure::StaleTimestamp,
                "offset {offset} must fail"
            );
        }
    }

    #[test]
    fn sw_extreme_timestamps_do_not_overflow() {
        let verifier = sw_verifier(&[SW_SECRET]);
        for (ts, now) in [
            (i64::MAX, i64::MIN),
            (i64::MIN, i64::MAX),
            (i64::MAX, 0),
            (i64::MIN, 0),
            (0, i64::MIN),
        ] {
            let headers = sw_headers(SW_ID, &ts.to_string(), SW_SIG);
            assert_eq!(
                failure(verifier.verify(&headers, None, SW_BODY, now)),
                AuthFailure::StaleTimestamp
            );
        }
    }

    #[test]
    fn sw_non_integer_timestamp_is_malformed() {
        let verifier = sw_verifier(&[SW_SECRET]);
        for ts in ["abc", "1649367553.5", "1e9", "99999999999999999999999"] {
            let headers = sw_headers(SW_ID, ts, SW_SIG);
            assert_eq!(
                failure(verifier.verify(&headers, None, SW_BODY, SW_TS)),
                AuthFailure::MalformedCredential,
                "timestamp {ts:?}"
            );
        }
    }

    #[test]
    fn sw_missing_or_blank_header_is_missing_credential() {
        let verifier = sw_verifier(&[SW_SECRET]);
        for name in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
            let mut headers = vector_headers(SW_SIG);
            headers.remove(name);
            assert_eq!(
                failure(verifier.verify(&headers, None, SW_BODY, SW_TS)),
                AuthFailure::MissingCredential,
                "without {name}"
            );
            headers.insert(name, HeaderValue::from_static(""));
            assert_eq!(
                failure(verifier.verify(&headers, None, SW_BODY, SW_TS)),
                AuthFailure::MissingCredential,
                "with an empty {name}"
            );
        }
    }

    #[test]
    fn sw_tampered_body_fails() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let tampered = br#"{"email":"test@example.com","username":"test_usex"}"#;
        assert_eq!(
            failure(verifier.verify(&vector_headers(SW_SIG), None, tampered, SW_TS)),
            AuthFailure::BadCredential
        );
    }

    #[test]
    fn sw_signature_is_bound_to_id_and_timestamp() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let other_id = sw_headers("msg_other", &SW_TS.to_string(), SW_SIG);
        assert_eq!(
            failure(verifier.verify(&other_id, None, SW_BODY, SW_TS)),
            AuthFailure::BadCredential
        );
        let other_ts = sw_headers(SW_ID, &(SW_TS + 1).to_string(), SW_SIG);
        assert_eq!(
            failure(verifier.verify(&other_ts, None, SW_BODY, SW_TS)),
            AuthFailure::BadCredential
        );
    }

    #[test]
    fn sw_any_valid_entry_among_several_passes() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let headers = [
            format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SW_SIG}"),
            format!("v1,not-base64!! v2,abc {SW_SIG}"),
            format!("garbage   {SW_SIG}  v1,"),
        ];
        for value in headers {
            assert!(
                verifier
                    .verify(&vector_headers(&value), None, SW_BODY, SW_TS)
                    .is_ok(),
                "header {value:?}"
            );
        }
        // Invalid entries alone do not pass.
        let invalid = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,not-base64!!";
        assert_eq!(
            failure(verifier.verify(&vector_headers(invalid), None, SW_BODY, SW_TS)),
            AuthFailure::BadCredential
        );
    }

    /// Regression test for svix's historic bug: an empty signature must never verify.
    #[test]
    fn sw_empty_v1_signature_fails() {
        let verifier = sw_verifier(&[SW_SECRET]);
        for value in ["v1,", "v1, v1,", "v1,="] {
            assert_eq!(
                failure(verifier.verify(&vector_headers(value), None, SW_BODY, SW_TS)),
                AuthFailure::BadCredential,
                "header {value:?}"
            );
        }
    }

    #[test]
    fn sw_other_signature_versions_are_ignored() {
        let verifier = sw_verifier(&[SW_SECRET]);
        let b64 = SW_SIG.trim_start_matches("v1,");
        for value in [
            format!("v2,{b64}"),
            format!("V1,{b64}"),
            format!("v1a,{b64}"),
            b64.to_owned(),
        ] {
            assert_eq!(
                failure(verifier.verify(&vector_headers(&value), None, SW_BODY, SW_TS)),
                AuthFailure::BadCredential,
                "header {value:?}"
            );
        }
    }

    #[test]
    fn sw_rotation_accepts_either_secret() {
        let verifier = sw_verifier(&[SW_SECRET, SW_NEW_SECRET]);
        for sig in [SW_SIG, SW_NEW_SIG] {
            assert!(
                verifier
                    .verify(&vector_headers(sig), None, SW_BODY, SW_TS)
                    .is_ok()
            );
        }
        // And with the order of secrets swapped.
        let swapped = sw_verifier(&[SW_NEW_SECRET, SW_SECRET]);
        assert!(
            swapped
                .verify(&vector_headers(SW_SIG), None, SW_BODY, SW_TS)
                .is_ok()
        );
        // Sign uses the first secret.
        let Signature::Headers(headers) = swapped.sign(SW_BODY, SW_ID, SW_TS) else {
            panic!("standard-webhooks signs with headers");
        };
        assert_eq!(headers[2].1, SW_NEW_SIG);
    }

    #[test]
    fn sw_unconfigured_secret_fails() {
        let verifier = sw_verifier(&[SW_NEW_SECRET]);
        assert_eq!(
            failure(verifier.verify(&vector_headers(SW_SIG), None, SW_BODY, SW_TS)),
            AuthFailure::BadCredential
        );
    }

    // ---- HMAC-SHA256 (ClawOps) ---------------------------------------------------------------

    const CLAWOPS_BODY: &[u8] = br#"{"event":"call.ended","call_id":"c_123"}"#;
    /// `hmac.new(b"whsec_test", CLAWOPS_BODY, hashlib.sha256).hexdigest()`, computed in Python.
    const CLAWOPS_HEX: &str = "0f14aaffe6f6e166e771b6e04deede641205866402e918609de6b0815fcc4855";
    /// The same with the key `clawops-new-secret`.
    const CLAWOPS_NEW_HEX: &str =
        "e92b6a85dcb31c952414471215193725f1ffa4ace40573ee14641f31082f2a92";

    fn clawops_scheme(header: &str) -> Scheme {
        Scheme::parse("hmac-sha256", header, "sha256=").unwrap()
    }

    fn clawops_verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(
            clawops_scheme("X-ClawOps-Signature"),
            secrets.iter().map(|s| Secret::new(*s)).collect(),
            Vec::new(),
        )
        .unwrap()
    }

    fn clawops_headers(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    fn clawops_check(verifier: &Verifier, value: &str, body: &[u8]) -> Result<Verified, Error> {
        verifier.verify(
            &clawops_headers("X-ClawOps-Signature", value),
            None,
            body,
            0,
        )
    }

    #[test]
    fn hmac_matches_an_independently_computed_digest_in_any_header_case() {
        let names = [
            "X-ClawOps-Signature",
            "x-clawops-signature",
            "X-CLAWOPS-SIGNATURE",
        ];
        for configured in names {
            let verifier = Verifier::new(
                clawops_scheme(configured),
                vec![Secret::new("whsec_test")],
                Vec::new(),
            )
            .unwrap();
            for sent in names {
                let headers = clawops_headers(sent, &format!("sha256={CLAWOPS_HEX}"));
                let verified = verifier.verify(&headers, None, CLAWOPS_BODY, 0).unwrap();
                assert_eq!(verified.delivery_id, None);
            }
        }
    }

    #[test]
    fn hmac_sign_produces_the_independent_digest() {
        let verifier = clawops_verifier(&["whsec_test", "clawops-new-secret"]);
        let Signature::Headers(headers) = verifier.sign(CLAWOPS_BODY, "ignored", 0) else {
            panic!("hmac signs with a header");
        };
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0.as_str(), "x-clawops-signature");
        assert_eq!(headers[0].1, format!("sha256={CLAWOPS_HEX}"));
    }

    #[test]
    fn hmac_accepts_uppercase_hex_and_surrounding_whitespace() {
        let verifier = clawops_verifier(&["whsec_test"]);
        let upper = CLAWOPS_HEX.to_ascii_uppercase();
        assert!(clawops_check(&verifier, &format!("sha256={upper}"), CLAWOPS_BODY).is_ok());
        assert!(
            clawops_check(
                &verifier,
                &format!("  sha256={CLAWOPS_HEX}\t"),
                CLAWOPS_BODY
            )
            .is_ok()
        );
    }

    #[test]
    fn hmac_tampered_body_fails() {
        let verifier = clawops_verifier(&["whsec_test"]);
        let tampered = br#"{"event":"call.ended","call_id":"c_124"}"#;
        assert_eq!(
            failure(clawops_check(
                &verifier,
                &format!("sha256={CLAWOPS_HEX}"),
                tampered
            )),
            AuthFailure::BadCredential
        );
        // A trailing newline is a different body too: verification is on the exact bytes.
        let mut with_newline = CLAWOPS_BODY.to_vec();
        with_newline.push(b'\n');
        assert_eq!(
            failure(clawops_check(
                &verifier,
                &format!("sha256={CLAWOPS_HEX}"),
                &with_newline
            )),
            AuthFailure::BadCredential
        );
    }

    #[test]
    fn hmac_changed_truncated_or_extended_signature_fails() {
        let verifier = clawops_verifier(&["whsec_test"]);
        let mut changed = CLAWOPS_HEX.to_owned();
        changed.replace_range(10..12, "00"); // one byte, 0xe6 -> 0x00
        assert_ne!(changed, CLAWOPS_HEX);
        let candidates = [
            changed,
            CLAWOPS_HEX[..62].to_owned(),
            CLAWOPS_HEX[..32].to_owned(),
            format!("{CLAWOPS_HEX}00"),
            format!("{}zz", &CLAWOPS_HEX[..62]),
        ];
        for candidate in candidates {
            assert_eq!(
                failure(clawops_check(
                    &verifier,
                    &format!("sha256={candidate}"),
                    CLAWOPS_BODY
                )),
                AuthFailure::BadCredential,
                "signature {candidate:?}"
            );
        }
    }

    /// Regression test for svix's historic bug: an empty signature must never verify.
    #[test]
    fn hmac_empty_signature_after_prefix_fails() {
        let verifier = clawops_verifier(&["whsec_test"]);
        for value in ["sha256=", "sha256=  "] {
            assert_eq!(
                failure(clawops_check(&verifier, value, CLAWOPS_BODY)),
                AuthFailure::BadCredential,
                "header {value:?}"
            );
        }
    }

    #[test]
    fn hmac_missing_or_empty_header_is_missing_credential() {
        let verifier = clawops_verifier(&["whsec_test"]);
        assert_eq!(
            failure(verifier.verify(&HeaderMap::new(), None, CLAWOPS_BODY, 0)),
            AuthFailure::MissingCredential
        );
        // Another header carrying the signature does not count.
        let elsewhere = clawops_headers("X-Signature", &format!("sha256={CLAWOPS_HEX}"));
        assert_eq!(
            failure(verifier.verify(&elsewhere, None, CLAWOPS_BODY, 0)),
            AuthFailure::MissingCredential
        );
        for value in ["", "   "] {
            assert_eq!(
                failure(clawops_check(&verifier, value, CLAWOPS_BODY)),
                AuthFailure::MissingCredential
            );
        }
    }

    #[test]
    fn hmac_unreadable_header_is_malformed() {
        let verifier = clawops_verifier(&["whsec_test"]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-clawops-signature",
            HeaderValue::from_bytes(b"sha256=\xff\xfe").unwrap(),
        );
        assert_eq!(
            failure(verifier.verify(&headers, None, CLAWOPS_BODY, 0)),
            AuthFailure::MalformedCredential
        );
    }

    #[test]
    fn hmac_wrong_prefix_fails() {
        let verifier = clawops_verifier(&["whsec_test"]);
        for value in [
            CLAWOPS_HEX.to_owned(),
            format!("sha1={CLAWOPS_HEX}"),
            format!("SHA256={CLAWOPS_HEX}"),
            format!("v1,{CLAWOPS_HEX}"),
        ] {
            assert_eq!(
                failure(clawops_check(&verifier, &value, CLAWOPS_BODY)),
                AuthFailure::BadCredential,
                "header {value:?}"
            );
        }
    }

    #[test]
    fn hmac_rotation_accepts_either_secret_and_rejects_others() {
        let verifier = clawops_verifier(&["whsec_test", "clawops-new-secret"]);
        for hex in [CLAWOPS_HEX, CLAWOPS_NEW_HEX] {
            assert!(clawops_check(&verifier, &format!("sha256={hex}"), CLAWOPS_BODY).is_ok());
        }
        let only_new = clawops_verifier(&["clawops-new-secret"]);
        assert_eq!(
            failure(clawops_check(
                &only_new,
                &format!("sha256={CLAWOPS_HEX}"),
                CLAWOPS_BODY
            )),
            AuthFailure::BadCredential
        );
    }

    // ---- Token -------------------------------------------------------------------------------

    fn token_verifier(tokens: &[&str]) -> Verifier {
        Verifier::new(
            Scheme::Token,
            Vec::new(),
            tokens.iter().map(|t| Secret::new(*t)).collect(),
        )
        .unwrap()
    }

    fn token_check(verifier: &Verifier, token: Option<&str>) -> Result<Verified, Error> {
        verifier.verify(&HeaderMap::new(), token, b"{}", 0)
    }

    #[test]
    fn token_right_passes_and_wrong_fails() {
        let verifier = token_verifier(&["tok_live_8f3a"]);
        let verified = token_check(&verifier, Some("tok_live_8f3a")).unwrap();
        assert_eq!(verified.delivery_id, None);
        for wrong in ["tok_live_8f3b", "TOK_LIVE_8F3A", "tok_live_8f3a ", "x"] {
            assert_eq!(
                failure(token_check(&verifier, Some(wrong))),
                AuthFailure::BadCredential,
                "token {wrong:?}"
            );
        }
    }

    #[test]
    fn token_prefix_or_extension_of_the_real_one_fails() {
        let verifier = token_verifier(&["tok_live_8f3a"]);
        for near in ["tok_live_8f3", "tok_", "tok_live_8f3a0"] {
            assert_eq!(
                failure(token_check(&verifier, Some(near))),
                AuthFailure::BadCredential,
                "token {near:?}"
            );
        }
    }

    #[test]
    fn token_empty_or_missing_is_missing_credential() {
        let verifier = token_verifier(&["tok_live_8f3a"]);
        assert_eq!(
            failure(token_check(&verifier, Some(""))),
            AuthFailure::MissingCredential
        );
        assert_eq!(
            failure(token_check(&verifier, None)),
            AuthFailure::MissingCredential
        );
    }

    #[test]
    fn token_rotation_accepts_either() {
        let verifier = token_verifier(&["tok_old", "tok_new"]);
        assert!(token_check(&verifier, Some("tok_old")).is_ok());
        assert!(token_check(&verifier, Some("tok_new")).is_ok());
        assert_eq!(
            failure(token_check(&verifier, Some("tok_other"))),
            AuthFailure::BadCredential
        );
        match verifier.sign(b"{}", "id", 0) {
            Signature::QueryToken(token) => assert_eq!(token, "tok_old"),
            other => panic!("expected a query token, got {other:?}"),
        }
    }

    // ---- None --------------------------------------------------------------------------------

    #[test]
    fn none_scheme_always_passes_and_signs_nothing() {
        let verifier = Verifier::new(Scheme::None, Vec::new(), Vec::new()).unwrap();
        let verified = verifier
            .verify(&HeaderMap::new(), None, b"anything", i64::MIN)
            .unwrap();
        assert_eq!(verified, Verified { delivery_id: None });
        assert!(matches!(verifier.sign(b"x", "id", 0), Signature::Nothing));
    }

    // ---- Redaction ---------------------------------------------------------------------------

    #[test]
    fn debug_output_contains_no_secret_material() {
        let secret = Secret::new("super-secret-value");
        assert_eq!(format!("{secret:?}"), "Secret(***)");

        let hmac = clawops_verifier(&["whsec_test"]);
        let signature = hmac.sign(CLAWOPS_BODY, "id", 0);
        let debug = format!("{hmac:?} {signature:?} {signature:#?}");
        assert!(!debug.contains("whsec_test"), "{debug}");
        assert!(!debug.contains(CLAWOPS_HEX), "{debug}");
        assert!(debug.contains("x-clawops-signature"), "{debug}");

        let sw = sw_verifier(&[SW_SECRET]);
        let signature = sw.sign(SW_BODY, SW_ID, SW_TS);
        let debug = format!("{sw:?} {signature:?} {signature:#?}");
        let key_b64 = SW_SECRET.trim_start_matches("whsec_");
        let sig_b64 = SW_SIG.trim_start_matches("v1,");
        for needle in [key_b64, sig_b64] {
            assert!(!debug.contains(needle), "{debug}");
        }
        // The decoded key bytes are not printed as a byte list either.
        let key_bytes = format!("{:?}", STANDARD.decode(key_b64).unwrap());
        assert!(
            !debug.contains(&key_bytes[1..key_bytes.len() - 1]),
            "{debug}"
        );

        let token = token_verifier(&["tok_live_8f3a"]);
        let signature = token.sign(b"{}", "id", 0);
        let debug = format!("{token:?} {signature:?} {signature:#?}");
        assert!(!debug.contains("tok_live_8f3a"), "{debug}");
        assert!(!debug.contains("8f3a"), "{debug}");
    }

    #[test]
    fn errors_contain_no_secret_material() {
        let bad_b64 = "whsec_not*base64";
        let err = Verifier::new(
            Scheme::StandardWebhooks,
            vec![Secret::new(bad_b64)],
            Vec::new(),
        )
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("not*base64"), "{text}");

        let err = Scheme::parse("whsec_oops-a-secret", "x", "y").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("oops"), "{text}");
    }

    // ---- Configuration -----------------------------------------------------------------------

    #[test]
    fn new_rejects_missing_or_empty_credentials() {
        let cases = [
            (
                clawops_scheme("X-ClawOps-Signature"),
                vec![],
                vec![Secret::new("t")],
            ),
            (
                clawops_scheme("X-ClawOps-Signature"),
                vec![Secret::new("")],
                vec![],
            ),
            (Scheme::StandardWebhooks, vec![], vec![Secret::new("t")]),
            (
                Scheme::StandardWebhooks,
                vec![Secret::new("whsec_")],
                vec![],
            ),
            (Scheme::Token, vec![Secret::new("s")], vec![]),
            (
                Scheme::Token,
                vec![],
                vec![Secret::new("ok"), Secret::new("")],
            ),
            (
                Scheme::Token,
                vec![],
                vec![Secret::new(vec![0xff_u8, 0xfe])],
            ),
        ];
        for (scheme, secrets, tokens) in cases {
            let name = scheme.name();
            assert!(
                matches!(
                    Verifier::new(scheme, secrets, tokens),
                    Err(Error::Config(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn new_rejects_invalid_whsec_base64() {
        for secret in ["whsec_not*base64", "whsec_C2FVs", "%%%", "whsec_C2FV sBQI"] {
            let result = Verifier::new(
                Scheme::StandardWebhooks,
                vec![Secret::new(SW_SECRET), Secret::new(secret)],
                Vec::new(),
            );
            assert!(matches!(result, Err(Error::Config(_))), "{secret:?}");
        }
    }

    #[test]
    fn new_accepts_whsec_secret_without_padding() {
        let unpadded = SW_NEW_SECRET.trim_end_matches('=');
        assert_ne!(unpadded, SW_NEW_SECRET, "the test key must need padding");
        let verifier = sw_verifier(&[unpadded]);
        assert!(
            verifier
                .verify(&vector_headers(SW_NEW_SIG), None, SW_BODY, SW_TS)
                .is_ok()
        );
    }

    #[test]
    fn scheme_parse_accepts_the_four_names_in_any_case() {
        assert_eq!(
            Scheme::parse(" HMAC-SHA256 ", "X-ClawOps-Signature", "sha256=").unwrap(),
            Scheme::HmacSha256 {
                header: HeaderName::from_static("x-clawops-signature"),
                prefix: "sha256=".to_owned(),
            }
        );
        assert_eq!(
            Scheme::parse("Standard-Webhooks", "", "").unwrap(),
            Scheme::StandardWebhooks
        );
        assert_eq!(Scheme::parse("token\n", "", "").unwrap(), Scheme::Token);
        assert_eq!(Scheme::parse("NONE", "", "").unwrap(), Scheme::None);
    }

    #[test]
    fn scheme_parse_rejects_unknown_names_and_bad_header_names() {
        for name in ["", "hmac", "sha256", "standard_webhooks", "svix", "basic"] {
            match Scheme::parse(name, "X-Sig", "sha256=") {
                Err(Error::Config(message)) => {
                    assert!(message.contains("hmac-sha256"), "{message}");
                    assert!(message.contains("standard-webhooks"), "{message}");
                }
                other => panic!("{name:?}: expected a configuration error, got {other:?}"),
            }
        }
        for header in ["", "bad header", "x-sig:"] {
            assert!(
                matches!(
                    Scheme::parse("hmac-sha256", header, "sha256="),
                    Err(Error::Config(_))
                ),
                "{header:?}"
            );
        }
    }

    #[test]
    fn parse_list_trims_and_drops_empty_items() {
        let list = parse_list(" a , ,b,,  c  ,");
        let items: Vec<&[u8]> = list.iter().map(Secret::expose).collect();
        assert_eq!(items, [b"a".as_slice(), b"b", b"c"]);
        assert!(parse_list("").is_empty());
        assert!(parse_list(" , ,").is_empty());
    }
}
