//! Webhook authentication: the secret type, the schemes (a signature over the raw request,
//! described as data by a [`Recipe`]; a static secret in a header; a shared `?token=`; or none),
//! verification of an incoming request on its exact raw bytes before any parsing, and signing for
//! our own senders (the CLI `send`, tests).
//!
//! Security rules this module keeps:
//! - every comparison against secret-derived material is constant-time (`subtle`), after a
//!   public length check; an empty signature or token never passes;
//! - several secrets or tokens may be active at once (rotation): any one of them passes;
//! - no secret, token or signature appears in an error message or in `Debug` output.
//!
//! How failures are classified (all are `Error::Unauthorized`):
//! - `MissingCredential`: a header the scheme needs (or `?token=`) is absent or blank;
//! - `MalformedCredential`: a needed header is present but is not readable text, or a timestamp
//!   is not an unsigned integer;
//! - `BadCredential`: a signature or token was given but is not a match, whatever the reason
//!   (wrong prefix, not hex, not base64, wrong length, empty after the prefix, wrong version,
//!   wrong secret). Kept as one answer on purpose, so a forger learns nothing from near misses;
//! - `StaleTimestamp`: a signed timestamp is further from the injected clock than the scheme's
//!   tolerance.

pub mod recipe;

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::error::{AuthFailure, Error};
pub use recipe::{Overrides, Recipe, Request};

/// How far (in seconds, either direction) a Standard Webhooks timestamp may be from now.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The prefix of Standard Webhooks secrets.
const WHSEC_PREFIX: &[u8] = b"whsec_";

/// Base64 for configured secrets: the standard alphabet, padding optional (operators copy keys
/// by hand). Signatures in requests use strict standard base64.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
    /// A signature over bytes of the request, as its [`Recipe`] describes: HMAC-SHA256 of the
    /// body (ClawOps, Bland), Standard Webhooks, Retell, ElevenLabs, Twilio, Telnyx, a
    /// configurable HMAC (Vapi).
    Signed(Recipe),
    /// A static secret in a header, after `prefix` (Vapi's `X-Vapi-Secret`; a bearer token as
    /// `Authorization: Bearer <token>`). It proves the sender knows the secret, not that the
    /// body is the one it sent.
    StaticHeader { header: HeaderName, prefix: String },
    /// Shared token in the query string `?token=`.
    Token,
    /// Explicitly configured: no authentication.
    None,
}

/// The scheme names [`Scheme::parse`] knows, for messages.
const SCHEMES: &str = "hmac-sha256, hmac, standard-webhooks, retell, elevenlabs, twilio, telnyx, \
                       static-header, token or none";

impl Scheme {
    /// HMAC-SHA256 of the body, hex, in `header` after `prefix`.
    pub fn hmac_sha256(header: HeaderName, prefix: &str) -> Self {
        Self::Signed(Recipe::hmac_sha256(header, prefix))
    }

    pub fn standard_webhooks() -> Self {
        Self::Signed(Recipe::standard_webhooks())
    }

    /// Parses a configured scheme name (case-insensitive, trimmed). `header` and `prefix` are
    /// the provider's documented signature header and prefix, for the schemes that take them
    /// (`hmac-sha256`, `static-header`).
    pub fn parse(name: &str, header: &str, prefix: &str) -> Result<Scheme, Error> {
        Self::configure(name, header, prefix, &Overrides::default())
    }

    /// [`Scheme::parse`], then the configured parts of a signature scheme changed.
    pub fn configure(
        name: &str,
        header: &str,
        prefix: &str,
        overrides: &Overrides<'_>,
    ) -> Result<Scheme, Error> {
        let name = name.trim().to_ascii_lowercase();
        let simple = |scheme: Scheme| {
            let changed = overrides.timestamp_header.is_some()
                || overrides.payload.is_some()
                || overrides.algorithm.is_some()
                || overrides.encoding.is_some()
                || overrides.tolerance_secs.is_some();
            if changed {
                Err(Error::Config(format!(
                    "the {} scheme signs nothing: it takes no signature settings",
                    scheme.name()
                )))
            } else {
                Ok(scheme)
            }
        };
        match name.as_str() {
            "static-header" => {
                let header =
                    HeaderName::from_bytes(overrides.header.unwrap_or(header).trim().as_bytes())
                        .map_err(|_| {
                            Error::Config(
                                "the static-header header name is not a valid HTTP header name"
                                    .into(),
                            )
                        })?;
                simple(Scheme::StaticHeader {
                    header,
                    prefix: overrides.prefix.unwrap_or(prefix).to_owned(),
                })
            }
            "token" => simple(Scheme::Token),
            "none" => simple(Scheme::None),
            // The value is not echoed: a misplaced secret must not reach a log.
            _ if recipe::RECIPES.contains(&name.as_str()) => Ok(Scheme::Signed(
                Recipe::named(&name, header, prefix)?.with(overrides)?,
            )),
            _ => Err(Error::Config(format!(
                "the auth scheme must be one of {SCHEMES}"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Signed(recipe) => recipe.name,
            Scheme::StaticHeader { .. } => "static-header",
            Scheme::Token => "token",
            Scheme::None => "none",
        }
    }

    /// Whether the scheme checks signatures with public keys (Telnyx's Ed25519): its keys are
    /// `CALLHOOK_<PROVIDER>_PUBLIC_KEYS`, not secrets.
    pub fn uses_public_keys(&self) -> bool {
        matches!(self, Scheme::Signed(r) if r.algorithm == recipe::Algorithm::Ed25519)
    }
}

/// Verifies incoming requests (and signs outgoing ones) for one provider.
///
/// For signature schemes `secrets` holds the decoded keys (a Standard Webhooks key without its
/// `whsec_` prefix and base64, an Ed25519 public key as its 32 bytes).
pub struct Verifier {
    pub scheme: Scheme,
    secrets: Vec<Secret>,
    tokens: Vec<Secret>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme.name())
            .field("secrets", &self.secrets.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's message id where the scheme signs one (Standard Webhooks' `webhook-id`): it
    /// lets callers dedupe redeliveries. Otherwise `None`.
    pub delivery_id: Option<String>,
}

/// What a sender must attach to a request. Debug prints header names, never values.
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

/// Constant-time membership of `given` among `known`, over fixed-length digests and every known
/// value without stopping early, so neither the length nor the position of a near match shows
/// in the timing.
fn any_equal(known: &[Secret], given: &[u8]) -> bool {
    let given_digest = Sha256::digest(given);
    let mut matched = Choice::from(0);
    for value in known {
        let digest = Sha256::digest(value.expose());
        matched |= digest.as_slice().ct_eq(given_digest.as_slice());
    }
    bool::from(matched)
}

/// What a sender of `scheme` attaches, signing with `key` (a secret, a token, or for Ed25519
/// schemes the sender's private key seed in base64, which callhook itself never holds) for a
/// request to `url`. Used by the CLI's `send` and the tests.
pub fn sign_as(
    scheme: &Scheme,
    key: &str,
    body: &[u8],
    url: &str,
    msg_id: &str,
    timestamp_secs: i64,
) -> Result<Signature, Error> {
    let key = key.trim();
    if key.is_empty() && *scheme != Scheme::None {
        return Err(Error::Config(format!(
            "no key to sign {} webhooks with",
            scheme.name()
        )));
    }
    Ok(match scheme {
        Scheme::Signed(recipe) => {
            let key = recipe.sender_key(key)?;
            recipe
                .sign(&key, body, url, msg_id, timestamp_secs)
                .map_or(Signature::Nothing, Signature::Headers)
        }
        Scheme::StaticHeader { header, prefix } => {
            Signature::Headers(vec![(header.clone(), format!("{prefix}{key}"))])
        }
        Scheme::Token => Signature::QueryToken(key.to_owned()),
        Scheme::None => Signature::Nothing,
    })
}

impl Verifier {
    /// Errors (`Error::Config`) if the scheme needs secrets (signatures, static headers) or
    /// tokens (token) and none are given, if one of them is empty or undecodable for its scheme,
    /// or if a token is not UTF-8. Several secrets/tokens may be active at once (rotation): any
    /// valid one passes. Secrets given to the token scheme, tokens given to the others, and both
    /// given to `none`, are ignored.
    pub fn new(scheme: Scheme, secrets: Vec<Secret>, tokens: Vec<Secret>) -> Result<Self, Error> {
        let name = scheme.name();
        let non_empty = |values: Vec<Secret>, what: &str| -> Result<Vec<Secret>, Error> {
            if values.is_empty() {
                return Err(Error::Config(format!(
                    "the {name} auth scheme needs at least one {what}"
                )));
            }
            if values.iter().any(|v| v.expose().is_empty()) {
                return Err(Error::Config(format!("a {name} {what} is empty")));
            }
            Ok(values)
        };
        let (secrets, tokens) = match &scheme {
            Scheme::Signed(recipe) => (recipe.keys(secrets)?, Vec::new()),
            Scheme::StaticHeader { .. } => (non_empty(secrets, "secret")?, Vec::new()),
            Scheme::Token => {
                let tokens = non_empty(tokens, "token")?;
                if tokens
                    .iter()
                    .any(|t| std::str::from_utf8(t.expose()).is_err())
                {
                    return Err(Error::Config(format!("a {name} token is not valid UTF-8")));
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

    /// Whether the scheme signs the request's URL (Twilio): the caller must then give the
    /// candidate URLs in [`Request::urls`].
    pub fn signs_url(&self) -> bool {
        matches!(&self.scheme, Scheme::Signed(r) if r.signed.contains(&recipe::Part::Url))
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
        let request = Request {
            headers,
            method: "POST",
            body,
            urls: &[],
        };
        self.verify_request(&request, query_token, now_unix_secs)
    }

    /// [`Verifier::verify`] with everything a scheme may sign (the method, the public URLs).
    pub fn verify_request(
        &self,
        request: &Request<'_>,
        query_token: Option<&str>,
        now_unix_secs: i64,
    ) -> Result<Verified, Error> {
        match &self.scheme {
            Scheme::Signed(recipe) => Ok(Verified {
                delivery_id: recipe.verify(&self.secrets, request, now_unix_secs)?,
            }),
            Scheme::StaticHeader { header, prefix } => {
                let value = header_text(request.headers, header.as_str())?;
                let given = value
                    .strip_prefix(prefix.as_str())
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .ok_or(unauthorized(AuthFailure::BadCredential))?;
                if any_equal(&self.secrets, given.as_bytes()) {
                    Ok(Verified { delivery_id: None })
                } else {
                    Err(unauthorized(AuthFailure::BadCredential))
                }
            }
            Scheme::Token => {
                let given = query_token
                    .filter(|token| !token.is_empty())
                    .ok_or(unauthorized(AuthFailure::MissingCredential))?;
                if any_equal(&self.tokens, given.as_bytes()) {
                    Ok(Verified { delivery_id: None })
                } else {
                    Err(unauthorized(AuthFailure::BadCredential))
                }
            }
            Scheme::None => Ok(Verified { delivery_id: None }),
        }
    }

    /// Produce headers/query for a sender (used by our CLI `send` and tests), with the FIRST
    /// secret or token. `msg_id` and `timestamp_secs` are used by the schemes that sign them.
    /// Ed25519 schemes sign nothing: their configured keys are public.
    #[must_use]
    pub fn sign(&self, body: &[u8], msg_id: &str, timestamp_secs: i64) -> Signature {
        self.sign_for(body, "", msg_id, timestamp_secs)
    }

    /// [`Verifier::sign`] for a request to `url` (the schemes that sign the URL: Twilio).
    #[must_use]
    pub fn sign_for(&self, body: &[u8], url: &str, msg_id: &str, timestamp_secs: i64) -> Signature {
        match &self.scheme {
            Scheme::Signed(recipe) => self
                .secrets
                .first()
                .and_then(|key| recipe.sign(key, body, url, msg_id, timestamp_secs))
                .map_or(Signature::Nothing, Signature::Headers),
            Scheme::StaticHeader { header, prefix } => match self.secrets.first() {
                Some(secret) => Signature::Headers(vec![(
                    header.clone(),
                    format!("{prefix}{}", String::from_utf8_lossy(secret.expose())),
                )]),
                None => Signature::Nothing,
            },
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
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use http::HeaderValue;

    const WEBHOOK_ID: &str = "webhook-id";
    const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
    const WEBHOOK_SIGNATURE: &str = "webhook-signature";

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
            Scheme::standard_webhooks(),
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
            Scheme::standard_webhooks(),
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
            (Scheme::standard_webhooks(), vec![], vec![Secret::new("t")]),
            (
                Scheme::standard_webhooks(),
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
                Scheme::standard_webhooks(),
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
            Scheme::hmac_sha256(HeaderName::from_static("x-clawops-signature"), "sha256=")
        );
        assert_eq!(
            Scheme::parse("Standard-Webhooks", "", "").unwrap(),
            Scheme::standard_webhooks()
        );
        assert_eq!(Scheme::parse("token\n", "", "").unwrap(), Scheme::Token);
        assert_eq!(Scheme::parse("NONE", "", "").unwrap(), Scheme::None);
    }

    #[test]
    fn scheme_parse_rejects_unknown_names_and_bad_header_names() {
        for name in [
            "",
            "hmac256",
            "sha256",
            "standard_webhooks",
            "svix",
            "basic",
        ] {
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
