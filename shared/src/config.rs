//! Configuration from the `CALLHOOK_*` environment (Lambda gets it from the template's parameters;
//! the local stack from the shell). Read once at start-up: a bad value fails the cold start loudly
//! instead of the first request.

use crate::auth::{Overrides, Scheme, Verifier, parse_list};
use crate::error::{Error, Result};
use crate::provider::{Provider, REGISTRY};
use std::collections::HashMap;

/// The default body limit: a round figure whose API Gateway event always fits Lambda's
/// synchronous invocation payload limit, [`LAMBDA_PAYLOAD_LIMIT`], which bounds the whole event,
/// not the body. The event (HTTP API, payload format 2.0) is JSON: an envelope, at most
/// [`EVENT_ENVELOPE_BYTES`], plus the body as API Gateway encodes it. Guaranteed for the two
/// encodings a webhook arrives in:
///
/// - a text body holding valid UTF-8 JSON (`application/json`), carried as a JSON string. JSON
///   text holds only printable characters, UTF-8 (passed through as is) and the whitespace
///   `\t \n \r`, so escaping it at most doubles it (`"` → `\"`, `\` → `\\`, newline → `\n`):
///   2 × 3,000,000 = 6,000,000 bytes;
/// - any body API Gateway marks `isBase64Encoded`: 4 × ⌈3,000,000 / 3⌉ = 4,000,000 bytes.
///
/// Worst case 6,000,000 + 262,144 = 6,262,144 < 6,291,456, 29,312 bytes to spare. (The exact
/// maximum would be ⌊(6,291,456 − 262,144 − 1) / 2⌋ = 3,014,655; a round figure is easier to
/// give senders.) Not guaranteed: a text body with raw control characters (escaped `\u00XX`, up
/// to 6×; it is not JSON, and would be refused with 400 anyway), or an encoder that writes
/// non-ASCII as `\u` escapes (up to 3×, for 2-byte UTF-8). Such a body near the limit is refused
/// by Lambda before callhook runs, with API Gateway's error instead of callhook's JSON 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3_000_000;

/// Lambda's synchronous invocation payload limit, "6 MB", for the whole event: its error reads
/// "Request must be smaller than 6291456 bytes for the InvokeFunction operation".
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6_291_456;

/// The most an API Gateway HTTP API event holds besides the body, 256 KiB. HTTP API limits the
/// request line and header values together to 10,240 bytes ("Total combined size of request line
/// and header values", not adjustable: <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>).
/// Each of those bytes appears at most three times in the event (the path in `rawPath` and
/// `requestContext.http.path`, the query in `rawQueryString` and `queryStringParameters`, the
/// user agent in `headers` and `requestContext.http.userAgent`) and grows at most 6× when
/// JSON-escaped (`\u00XX`): 3 × 6 × 10,240 = 184,320. Header names, outside the quota and assumed
/// at most 10,240 bytes in all, with the JSON punctuation of at most that many headers
/// (`"":"",`, 6 bytes each): 10,240 + 61,440 = 71,680. The fixed fields (`version`, `routeKey`,
/// `requestContext`, `isBase64Encoded`, …: about 650 bytes in the tests' events, well under
/// 1 KB in real ones) fit in the remaining 262,144 − 256,000 = 6,144.
pub const EVENT_ENVELOPE_BYTES: usize = 256 * 1024;

// The guarantee above, checked by the compiler: a worst-case JSON body at the default limit, in
// the largest envelope, is smaller than what Lambda accepts.
const _: () = assert!(2 * DEFAULT_MAX_BODY_BYTES + EVENT_ENVELOPE_BYTES < LAMBDA_PAYLOAD_LIMIT);
const _: () =
    assert!(DEFAULT_MAX_BODY_BYTES.div_ceil(3) * 4 + EVENT_ENVELOPE_BYTES < LAMBDA_PAYLOAD_LIMIT);

pub const DEFAULT_EVENTS_TABLE: &str = "callhook-events";
pub const DEFAULT_CALLS_TABLE: &str = "callhook-calls";

/// What to do when a payload says `opt_out_sensitive_data_storage: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptOutPolicy {
    /// Store everything: Vox itself advises receivers to keep what they need, since it blanks
    /// those fields on its side.
    #[default]
    Keep,
    /// Remove transcripts and recording URLs and mask phone numbers before anything is stored.
    Redact,
}

#[derive(Debug)]
pub struct ProviderConfig {
    pub provider: &'static dyn Provider,
    pub verifier: Verifier,
    /// `CALLHOOK_<PROVIDER>_PUBLIC_URL`: the webhook URL exactly as configured at the provider,
    /// for schemes that sign it (Twilio). Unset: rebuilt from the request's Host, path and query.
    pub public_url: Option<String>,
}

#[derive(Debug)]
pub struct Config {
    pub events_table: String,
    pub calls_table: String,
    /// Providers with a usable authentication setup; others answer 404.
    pub providers: Vec<ProviderConfig>,
    pub opt_out_policy: OptOutPolicy,
    pub max_body_bytes: usize,
    /// Stored events get an `expires_at` this many days after receipt, when set.
    pub event_retention_days: Option<u32>,
    /// Providers left off because nothing authenticates them (named in the start-up log).
    pub disabled_providers: Vec<&'static str>,
    /// Under the redact policy, the secret key of the keyed hash the calls table's number
    /// indexes hold instead of numbers (`CALLHOOK_NUMBER_INDEX_KEY`; the CLI needs the same key
    /// to look calls up by number).
    pub number_index_key: Option<Vec<u8>>,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, v)| k.starts_with("CALLHOOK_") && !v.trim().is_empty())
            .collect();
        let get = |key: &str| vars.get(key).map(|v| v.trim());

        let allow_unauthenticated = match get("CALLHOOK_ALLOW_UNAUTHENTICATED")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(Error::Config(
                    "CALLHOOK_ALLOW_UNAUTHENTICATED must be `true` or `false`.".into(),
                ));
            }
        };
        let mut providers = Vec::new();
        let mut disabled_providers = Vec::new();
        for provider in REGISTRY.iter().copied() {
            let prefix = format!("CALLHOOK_{}", provider.name().to_ascii_uppercase());
            let setting = |part: &str| get(&format!("{prefix}_{part}"));
            let scheme = provider_scheme(provider, setting)?;
            if scheme == Scheme::None && !allow_unauthenticated {
                return Err(Error::Config(format!(
                    "{prefix}_AUTH=none would accept and store anything anyone posts; set \
                     CALLHOOK_ALLOW_UNAUTHENTICATED=true to allow it."
                )));
            }
            // Ed25519 schemes check with the sender's public keys; the others with secrets.
            let keys_var = if scheme.uses_public_keys() {
                "PUBLIC_KEYS"
            } else {
                "SECRETS"
            };
            let secrets = parse_list(setting(keys_var).unwrap_or(""));
            let tokens = parse_list(setting("TOKENS").unwrap_or(""));
            let unconfigured = match scheme {
                Scheme::None => false,
                Scheme::Token => tokens.is_empty(),
                _ => secrets.is_empty(),
            };
            if unconfigured {
                // A provider nobody configured is off (404), whatever its scheme: a stack that
                // serves only ClawOps must not fail to start over Vox's empty token list.
                disabled_providers.push(provider.name());
                continue;
            }
            let public_url = setting("PUBLIC_URL").map(str::to_owned);
            let verifier = Verifier::new(scheme, secrets, tokens)
                .map_err(|e| Error::Config(format!("{prefix}: {e}")))?;
            providers.push(ProviderConfig {
                provider,
                verifier,
                public_url,
            });
        }

        let opt_out_policy = match get("CALLHOOK_OPT_OUT_POLICY")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("keep") => OptOutPolicy::Keep,
            Some("redact") => OptOutPolicy::Redact,
            Some(_) => {
                return Err(Error::Config(
                    "CALLHOOK_OPT_OUT_POLICY must be `keep` or `redact`.".into(),
                ));
            }
        };
        let max_body_bytes = match get("CALLHOOK_MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(v) => v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::Config("CALLHOOK_MAX_BODY_BYTES must be a positive integer.".into())
            })?,
        };
        let event_retention_days = match get("CALLHOOK_EVENT_RETENTION_DAYS") {
            None => None,
            Some(v) => Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::Config("CALLHOOK_EVENT_RETENTION_DAYS must be a positive integer.".into())
            })?),
        };
        let number_index_key = match (opt_out_policy, get("CALLHOOK_NUMBER_INDEX_KEY")) {
            (OptOutPolicy::Keep, _) => None,
            (OptOutPolicy::Redact, Some(key)) if key.len() >= 16 => Some(key.as_bytes().to_vec()),
            (OptOutPolicy::Redact, _) => {
                return Err(Error::Config(
                    "The redact policy needs CALLHOOK_NUMBER_INDEX_KEY (a secret of 16 characters \
                     or more): the number indexes hold a keyed hash of each number, never the \
                     number."
                        .into(),
                ));
            }
        };
        Ok(Self {
            number_index_key,
            events_table: get("CALLHOOK_EVENTS_TABLE")
                .unwrap_or(DEFAULT_EVENTS_TABLE)
                .to_owned(),
            calls_table: get("CALLHOOK_CALLS_TABLE")
                .unwrap_or(DEFAULT_CALLS_TABLE)
                .to_owned(),
            providers,
            opt_out_policy,
            max_body_bytes,
            event_retention_days,
            disabled_providers,
        })
    }

    /// The configuration of the provider a route names; 404 when unknown or not configured.
    pub fn provider(&self, name: &str) -> Result<&ProviderConfig> {
        self.providers
            .iter()
            .find(|p| p.provider.name() == name)
            .ok_or_else(|| Error::UnknownProvider(sanitize(name)))
    }
}

/// The scheme `provider` authenticates with: its default, or `CALLHOOK_<PROVIDER>_AUTH`, with
/// the parts configuration overrides (`_SIGNATURE_HEADER`, `_SIGNATURE_PREFIX`,
/// `_TIMESTAMP_HEADER`, `_SIGNED_PAYLOAD`, `_SIGNATURE_ALGORITHM`, `_SIGNATURE_ENCODING`,
/// `_TOLERANCE_SECS`, `_KEY_FORMAT`). `setting(part)` reads `CALLHOOK_<PROVIDER>_<part>`.
pub fn provider_scheme<'a>(
    provider: &dyn Provider,
    setting: impl Fn(&str) -> Option<&'a str>,
) -> Result<Scheme> {
    let defaults = provider.auth_defaults();
    let overrides = Overrides {
        header: setting("SIGNATURE_HEADER"),
        prefix: setting("SIGNATURE_PREFIX"),
        timestamp_header: setting("TIMESTAMP_HEADER"),
        payload: setting("SIGNED_PAYLOAD"),
        algorithm: setting("SIGNATURE_ALGORITHM"),
        encoding: setting("SIGNATURE_ENCODING"),
        tolerance_secs: setting("TOLERANCE_SECS"),
        key_format: setting("KEY_FORMAT"),
    };
    Scheme::configure(
        setting("AUTH").unwrap_or(defaults.scheme),
        defaults.header,
        defaults.prefix,
        &overrides,
    )
    .map_err(|e| {
        Error::Config(format!(
            "CALLHOOK_{}_AUTH: {e}",
            provider.name().to_ascii_uppercase()
        ))
    })
}

/// A route segment echoed in an error: printable ASCII, bounded, so a hostile path cannot inject
/// into logs or responses.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn providers_without_credentials_are_disabled_not_fatal() {
        let config = Config::from_vars(vars(&[("CALLHOOK_CLAWOPS_SECRETS", "s1, s2")])).unwrap();
        assert!(config.provider("clawops").is_ok());
        assert_eq!(config.provider("vox").unwrap_err().status(), 404);
        assert_eq!(
            config.disabled_providers,
            [
                "vox",
                "synthflow",
                "retell",
                "vapi",
                "bland",
                "elevenlabs",
                "twilio",
                "telnyx"
            ]
        );
        assert_eq!(config.events_table, DEFAULT_EVENTS_TABLE);
    }

    #[test]
    fn no_authentication_needs_an_explicit_none_and_an_explicit_allowance() {
        let refused = Config::from_vars(vars(&[("CALLHOOK_VOX_AUTH", "none")])).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("CALLHOOK_ALLOW_UNAUTHENTICATED")
        );
        let refused = Config::from_vars(vars(&[
            ("CALLHOOK_VOX_AUTH", "none"),
            ("CALLHOOK_ALLOW_UNAUTHENTICATED", "false"),
        ]));
        assert!(refused.is_err());
        let config = Config::from_vars(vars(&[
            ("CALLHOOK_VOX_AUTH", "none"),
            ("CALLHOOK_ALLOW_UNAUTHENTICATED", "true"),
        ]))
        .unwrap();
        assert_eq!(
            config.provider("vox").unwrap().verifier.scheme,
            Scheme::None
        );
        assert!(config.provider("synthflow").is_err());
    }

    #[test]
    fn bad_values_fail_at_start_up() {
        for pairs in [
            vec![("CALLHOOK_VOX_AUTH", "md5")],
            vec![("CALLHOOK_OPT_OUT_POLICY", "shred")],
            vec![("CALLHOOK_MAX_BODY_BYTES", "-1")],
            vec![("CALLHOOK_OPT_OUT_POLICY", "redact")],
            vec![
                ("CALLHOOK_OPT_OUT_POLICY", "redact"),
                ("CALLHOOK_NUMBER_INDEX_KEY", "short"),
            ],
            vec![
                ("CALLHOOK_SYNTHFLOW_AUTH", "standard-webhooks"),
                ("CALLHOOK_SYNTHFLOW_SECRETS", "whsec_%%%"),
            ],
        ] {
            let error = Config::from_vars(vars(&pairs)).unwrap_err();
            assert_eq!(error.status(), 500, "{pairs:?}");
            assert!(
                !error.to_string().contains("%%%"),
                "secrets stay out of errors"
            );
        }
    }

    #[test]
    fn everything_is_read() {
        let config = Config::from_vars(vars(&[
            ("CALLHOOK_EVENTS_TABLE", "ev"),
            ("CALLHOOK_CALLS_TABLE", "ca"),
            ("CALLHOOK_SYNTHFLOW_TOKENS", "t1"),
            ("CALLHOOK_OPT_OUT_POLICY", "Redact"),
            ("CALLHOOK_NUMBER_INDEX_KEY", "0123456789abcdef"),
            ("CALLHOOK_MAX_BODY_BYTES", "1024"),
            ("CALLHOOK_EVENT_RETENTION_DAYS", "30"),
            ("CALLHOOK_CLAWOPS_AUTH", "hmac-sha256"),
            ("CALLHOOK_CLAWOPS_SIGNATURE_HEADER", "X-Other"),
            ("CALLHOOK_CLAWOPS_SECRETS", "k"),
        ]))
        .unwrap();
        assert_eq!(
            (config.events_table.as_str(), config.calls_table.as_str()),
            ("ev", "ca")
        );
        assert_eq!(config.opt_out_policy, OptOutPolicy::Redact);
        assert_eq!(
            config.number_index_key.as_deref(),
            Some(&b"0123456789abcdef"[..])
        );
        assert_eq!(config.max_body_bytes, 1024);
        assert_eq!(config.event_retention_days, Some(30));
        assert_eq!(
            config.provider("clawops").unwrap().verifier.scheme,
            Scheme::hmac_sha256(http::HeaderName::from_static("x-other"), "sha256=")
        );
    }

    #[test]
    fn unknown_provider_names_are_sanitized_in_errors() {
        let config = Config::from_vars(vars(&[])).unwrap();
        let error = config.provider("evil\n<script>").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Provider `evilscript` is not configured on this endpoint."
        );
    }
}
