//! Signature schemes as data. A [`Recipe`] says where a request's signature (and timestamp, and
//! message id) are, the exact bytes signed, the algorithm, the encoding and the tolerance; one
//! verifier ([`Recipe::verify`]) and one signer ([`Recipe::sign`]) serve them all. Each provider
//! names its default recipe ([`Recipe::named`]); configuration can override its parts
//! ([`Overrides`]) for providers that let their users choose (Vapi's HMAC plan).
//!
//! The rules of [`super`] hold for every recipe: comparisons in constant time after a public
//! length check, any configured key may match (rotation), nothing secret in errors or `Debug`.

use super::{Secret, header_text, unauthorized};
use crate::error::{AuthFailure, Error};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

/// Where the signature is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureAt {
    /// The whole value of the first present header of `names`, after `prefix`: ClawOps
    /// `X-ClawOps-Signature: sha256=<hex>`, Bland, Twilio, Telnyx.
    Header {
        names: Vec<HeaderName>,
        prefix: String,
    },
    /// The entries named `key` of a comma-separated `key=value` list: Retell
    /// `x-retell-signature: v=<ms>,d=<hex>`, ElevenLabs `ElevenLabs-Signature: t=<s>,v0=<hex>`.
    ListEntry { name: HeaderName, key: &'static str },
    /// Space-separated `<version>,<signature>` entries, any one of which may match: Standard
    /// Webhooks (`webhook-signature` or `svix-signature`).
    Versioned {
        names: Vec<HeaderName>,
        version: &'static str,
    },
}

/// Where the timestamp is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampAt {
    /// The first present header of the list.
    Header(Vec<HeaderName>),
    /// The entry `key` of the signature header's `key=value` list.
    ListEntry(&'static str),
}

/// The unit of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
    /// Milliseconds when above 10^12 (after 2001-09-09 in ms, or year 33658 in seconds), else
    /// seconds: for senders that do not document theirs (Vapi).
    Either,
}

/// How far from now a timestamp may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    pub past_secs: i64,
    pub future_secs: i64,
}

impl Tolerance {
    pub const fn both(secs: i64) -> Self {
        Self {
            past_secs: secs,
            future_secs: secs,
        }
    }
}

/// One piece of the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The raw body.
    Body,
    /// The timestamp's text (as sent, or the canonical integer: [`Recipe::canonical_timestamp`]).
    Timestamp,
    /// The message id header's text.
    MessageId,
    /// The request's public URL (Twilio: the URL configured at Twilio; every variant is tried).
    Url,
    /// The request method, upper case.
    Method,
    /// Every form field of the body, sorted by name then value, each name followed by its value
    /// with no separator (Twilio).
    SortedForm,
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
    HmacSha512,
    /// Ed25519 with the sender's public keys (Telnyx): the configured keys are public.
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// How configured keys are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// The text's bytes are the key.
    Text,
    /// `whsec_<base64>` or bare base64 (Standard Webhooks).
    Whsec,
    /// Base64 (an Ed25519 public key, or an HMAC key a sender gives in base64).
    Base64,
}

/// One signature scheme, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The scheme's configuration name (`hmac-sha256`, `retell`, …).
    pub name: &'static str,
    pub signature: SignatureAt,
    pub timestamp: Option<(TimestampAt, TimeUnit, Tolerance)>,
    /// Sign the timestamp as its integer's canonical text rather than as sent.
    pub canonical_timestamp: bool,
    pub message_id: Option<Vec<HeaderName>>,
    pub signed: Vec<Part>,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub key_format: KeyFormat,
}

/// What configuration may change of a provider's recipe. `None` keeps the recipe's own.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub header: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub timestamp_header: Option<&'a str>,
    /// The signed bytes as a template: `{body}`, `{timestamp}`, `{method}`, `{url}`, `{id}` (or
    /// `{svix-id}`), and literal text between them.
    pub payload: Option<&'a str>,
    pub algorithm: Option<&'a str>,
    pub encoding: Option<&'a str>,
    pub tolerance_secs: Option<&'a str>,
    pub key_format: Option<&'a str>,
}

fn header(name: &str) -> Result<HeaderName, Error> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        Error::Config("a configured header name is not a valid HTTP header name".into())
    })
}

fn headers(names: &[&'static str]) -> Vec<HeaderName> {
    names.iter().map(|n| HeaderName::from_static(n)).collect()
}

/// The names [`Recipe::named`] knows, for error messages.
pub const RECIPES: &[&str] = &[
    "hmac-sha256",
    "hmac",
    "standard-webhooks",
    "retell",
    "elevenlabs",
    "twilio",
    "telnyx",
];

impl Recipe {
    /// HMAC-SHA256 of the raw body, hex, in `header` after `prefix` (ClawOps, Bland).
    pub fn hmac_sha256(header: HeaderName, prefix: &str) -> Self {
        Self {
            name: "hmac-sha256",
            signature: SignatureAt::Header {
                names: vec![header],
                prefix: prefix.to_owned(),
            },
            timestamp: None,
            canonical_timestamp: false,
            message_id: None,
            signed: vec![Part::Body],
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Hex,
            key_format: KeyFormat::Text,
        }
    }

    /// Standard Webhooks (standardwebhooks.com), `webhook-*` or `svix-*` headers: `v1,<base64>`
    /// entries of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keys `whsec_<base64>`, ±5 minutes.
    pub fn standard_webhooks() -> Self {
        Self {
            name: "standard-webhooks",
            signature: SignatureAt::Versioned {
                names: headers(&["webhook-signature", "svix-signature"]),
                version: "v1",
            },
            timestamp: Some((
                TimestampAt::Header(headers(&["webhook-timestamp", "svix-timestamp"])),
                TimeUnit::Seconds,
                Tolerance::both(300),
            )),
            canonical_timestamp: true,
            message_id: Some(headers(&["webhook-id", "svix-id"])),
            signed: vec![
                Part::MessageId,
                Part::Literal(".".into()),
                Part::Timestamp,
                Part::Literal(".".into()),
                Part::Body,
            ],
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Base64,
            key_format: KeyFormat::Whsec,
        }
    }

    /// The recipe called `name`, with `header` and `prefix` (the provider's documented
    /// signature header and prefix) where the recipe takes them.
    pub fn named(name: &str, header_name: &str, prefix: &str) -> Result<Self, Error> {
        let recipe = match name {
            "hmac-sha256" => Self::hmac_sha256(header(header_name)?, prefix),
            "standard-webhooks" => Self::standard_webhooks(),
            // Retell: `v=<unix ms>,d=<hex HMAC-SHA256 of body followed by the ms digits>`, ±5 min.
            "retell" => Self {
                name: "retell",
                signature: SignatureAt::ListEntry {
                    name: HeaderName::from_static("x-retell-signature"),
                    key: "d",
                },
                timestamp: Some((
                    TimestampAt::ListEntry("v"),
                    TimeUnit::Millis,
                    Tolerance::both(300),
                )),
                canonical_timestamp: false,
                message_id: None,
                signed: vec![Part::Body, Part::Timestamp],
                algorithm: Algorithm::HmacSha256,
                encoding: Encoding::Hex,
                key_format: KeyFormat::Text,
            },
            // ElevenLabs: `t=<unix s>,v0=<hex HMAC-SHA256 of "{t}.{body}">`, at most 30 min old.
            "elevenlabs" => Self {
                name: "elevenlabs",
                signature: SignatureAt::ListEntry {
                    name: HeaderName::from_static("elevenlabs-signature"),
                    key: "v0",
                },
                timestamp: Some((
                    TimestampAt::ListEntry("t"),
                    TimeUnit::Seconds,
                    Tolerance {
                        past_secs: 1800,
                        future_secs: 300,
                    },
                )),
                canonical_timestamp: false,
                message_id: None,
                signed: vec![Part::Timestamp, Part::Literal(".".into()), Part::Body],
                algorithm: Algorithm::HmacSha256,
                encoding: Encoding::Hex,
                key_format: KeyFormat::Text,
            },
            // Twilio: base64 HMAC-SHA1 of the URL Twilio called, then each form field's name and
            // value, sorted; keys are the account's auth tokens. No timestamp.
            "twilio" => Self {
                name: "twilio",
                signature: SignatureAt::Header {
                    names: headers(&["x-twilio-signature"]),
                    prefix: String::new(),
                },
                timestamp: None,
                canonical_timestamp: false,
                message_id: None,
                signed: vec![Part::Url, Part::SortedForm],
                algorithm: Algorithm::HmacSha1,
                encoding: Encoding::Base64,
                key_format: KeyFormat::Text,
            },
            // Telnyx: base64 Ed25519 signature of `{timestamp}|{body}`, ±300 s, with Telnyx's
            // public keys.
            "telnyx" => Self {
                name: "telnyx",
                signature: SignatureAt::Header {
                    names: headers(&["telnyx-signature-ed25519"]),
                    prefix: String::new(),
                },
                timestamp: Some((
                    TimestampAt::Header(headers(&["telnyx-timestamp"])),
                    TimeUnit::Seconds,
                    Tolerance::both(300),
                )),
                canonical_timestamp: false,
                message_id: None,
                signed: vec![Part::Timestamp, Part::Literal("|".into()), Part::Body],
                algorithm: Algorithm::Ed25519,
                encoding: Encoding::Base64,
                key_format: KeyFormat::Base64,
            },
            // A configurable HMAC (Vapi's HMAC plan and its defaults): hex HMAC-SHA256 of
            // `{timestamp}.{body}` in `x-signature`, the timestamp in `x-timestamp`, ±5 min.
            "hmac" => Self {
                name: "hmac",
                signature: SignatureAt::Header {
                    names: headers(&["x-signature"]),
                    prefix: String::new(),
                },
                timestamp: Some((
                    TimestampAt::Header(headers(&["x-timestamp"])),
                    TimeUnit::Either,
                    Tolerance::both(300),
                )),
                canonical_timestamp: false,
                message_id: None,
                signed: vec![Part::Timestamp, Part::Literal(".".into()), Part::Body],
                algorithm: Algorithm::HmacSha256,
                encoding: Encoding::Hex,
                key_format: KeyFormat::Text,
            },
            _ => {
                return Err(Error::Config(format!(
                    "no signature scheme of that name (known: {})",
                    RECIPES.join(", ")
                )));
            }
        };
        Ok(recipe)
    }

    /// Applies configuration to the recipe.
    pub fn with(mut self, overrides: &Overrides<'_>) -> Result<Self, Error> {
        let config = |what: &str| Error::Config(format!("the {} scheme: {what}", self.name));
        if let Some(p) = overrides.prefix {
            match &mut self.signature {
                SignatureAt::Header { prefix, .. } => *prefix = p.to_owned(),
                _ => return Err(config("its signature header takes no prefix")),
            }
        }
        if let Some(name) = overrides.header {
            let name = header(name)?;
            match &mut self.signature {
                SignatureAt::Header { names, .. } | SignatureAt::Versioned { names, .. } => {
                    *names = vec![name];
                }
                SignatureAt::ListEntry { name: at, .. } => *at = name,
            }
        }
        if let Some(name) = overrides.timestamp_header {
            match &mut self.timestamp {
                Some((at @ TimestampAt::Header(_), _, _)) => {
                    *at = TimestampAt::Header(vec![header(name)?])
                }
                _ => return Err(config("its timestamp is not in a header of its own")),
            }
        }
        if let Some(secs) = overrides.tolerance_secs {
            let secs: i64 = secs
                .trim()
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| config("the tolerance must be a positive number of seconds"))?;
            match &mut self.timestamp {
                Some((_, _, tolerance)) => *tolerance = Tolerance::both(secs),
                None => return Err(config("it signs no timestamp")),
            }
        }
        if let Some(template) = overrides.payload {
            self.signed = parse_payload_template(template)?;
            if self.signed.contains(&Part::MessageId) && self.message_id.is_none() {
                self.message_id = Some(headers(&["webhook-id", "svix-id"]));
            }
            if self.signed.contains(&Part::Timestamp) && self.timestamp.is_none() {
                return Err(config(
                    "the payload has {timestamp} but the scheme reads none",
                ));
            }
            // A timestamp nothing signs proves nothing (Vapi's `includeTimestamp: false`).
            if !self.signed.contains(&Part::Timestamp) {
                self.timestamp = None;
            }
        }
        if let Some(algorithm) = overrides.algorithm {
            self.algorithm = match algorithm.trim().to_ascii_lowercase().as_str() {
                "hmac-sha1" | "sha1" => Algorithm::HmacSha1,
                "hmac-sha256" | "sha256" => Algorithm::HmacSha256,
                "hmac-sha512" | "sha512" => Algorithm::HmacSha512,
                "ed25519" => Algorithm::Ed25519,
                _ => {
                    return Err(config(
                        "the algorithm must be hmac-sha1, hmac-sha256, hmac-sha512 or ed25519",
                    ));
                }
            };
        }
        if let Some(encoding) = overrides.encoding {
            self.encoding = match encoding.trim().to_ascii_lowercase().as_str() {
                "hex" => Encoding::Hex,
                "base64" => Encoding::Base64,
                _ => return Err(config("the encoding must be hex or base64")),
            };
        }
        if let Some(format) = overrides.key_format {
            self.key_format = match format.trim().to_ascii_lowercase().as_str() {
                "text" => KeyFormat::Text,
                "base64" => KeyFormat::Base64,
                "whsec" => KeyFormat::Whsec,
                _ => return Err(config("the key format must be text, base64 or whsec")),
            };
        }
        Ok(self)
    }

    /// The Ed25519 public key of a sender's private key seed (base64): what a provider
    /// configured with that sender publishes. `None` if `seed` is not 32 bytes of base64.
    pub fn ed25519_public_key(seed: &str) -> Option<String> {
        let seed: [u8; 32] = super::SECRET_BASE64
            .decode(seed.trim())
            .ok()?
            .try_into()
            .ok()?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        Some(STANDARD.encode(public.as_bytes()))
    }

    /// Decodes a sender's key for [`Recipe::sign`]: as the configured keys are, except that an
    /// Ed25519 key is the private key's seed (base64).
    pub fn sender_key(&self, key: &str) -> Result<Secret, Error> {
        if self.algorithm == Algorithm::Ed25519 {
            return super::SECRET_BASE64
                .decode(key.trim())
                .ok()
                .filter(|seed| seed.len() == 32)
                .map(Secret)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "a {} signing key is not a 32-byte Ed25519 seed in base64",
                        self.name
                    ))
                });
        }
        let mut keys = Self {
            algorithm: Algorithm::HmacSha256,
            ..self.clone()
        }
        .keys(vec![Secret::new(key.trim())])?;
        keys.pop()
            .ok_or_else(|| Error::Internal("a decoded key went missing".into()))
    }

    /// Decodes the configured keys, refusing empty or undecodable ones (named, never shown).
    pub fn keys(&self, configured: Vec<Secret>) -> Result<Vec<Secret>, Error> {
        let name = self.name;
        if configured.is_empty() {
            return Err(Error::Config(format!(
                "the {name} auth scheme needs at least one secret"
            )));
        }
        configured
            .into_iter()
            .map(|secret| {
                let raw = secret.expose();
                let key = match self.key_format {
                    KeyFormat::Text => secret.clone(),
                    KeyFormat::Whsec | KeyFormat::Base64 => {
                        let encoded = match self.key_format {
                            KeyFormat::Whsec => {
                                raw.strip_prefix(super::WHSEC_PREFIX).unwrap_or(raw)
                            }
                            _ => raw,
                        };
                        super::SECRET_BASE64
                            .decode(encoded)
                            .map(Secret)
                            .map_err(|_| {
                                Error::Config(format!("a {name} secret is not valid base64"))
                            })?
                    }
                };
                if key.expose().is_empty() {
                    return Err(Error::Config(format!("a {name} secret is empty")));
                }
                if self.algorithm == Algorithm::Ed25519 && ed25519_key(key.expose()).is_none() {
                    return Err(Error::Config(format!(
                        "a {name} public key is not a valid Ed25519 key (32 bytes, base64)"
                    )));
                }
                Ok(key)
            })
            .collect()
    }

    /// Verifies `request` against `keys` (decoded by [`Recipe::keys`]). Returns the message id
    /// when the recipe reads one.
    pub fn verify(
        &self,
        keys: &[Secret],
        request: &Request<'_>,
        now_unix_secs: i64,
    ) -> Result<Option<String>, Error> {
        let bad = || unauthorized(AuthFailure::BadCredential);
        let candidates = self.candidates(request.headers)?;
        let timestamp = match &self.timestamp {
            None => None,
            Some((at, unit, tolerance)) => {
                let text = self.timestamp_text(at, request.headers)?;
                Some(checked_timestamp(
                    text,
                    *unit,
                    *tolerance,
                    now_unix_secs,
                    self.canonical_timestamp,
                )?)
            }
        };
        let message_id = match &self.message_id {
            Some(names) => Some(first_header(request.headers, names)?),
            None => None,
        };
        if candidates.is_empty() {
            return Err(bad());
        }
        let form = if self.signed.contains(&Part::SortedForm) {
            Some(sorted_form(request.body).ok_or_else(bad)?)
        } else {
            None
        };
        let urls: &[String] = if self.signed.contains(&Part::Url) {
            request.urls
        } else {
            &[String::new()]
        };
        for url in urls {
            let parts = self.parts(
                request,
                url,
                timestamp.as_deref(),
                message_id,
                form.as_deref(),
            );
            // Ed25519 verifies one contiguous message: built once, whatever the number of keys.
            let message = (self.algorithm == Algorithm::Ed25519).then(|| parts.concat());
            for key in keys {
                if self.matches(key.expose(), &parts, message.as_deref(), &candidates) {
                    return Ok(message_id.map(str::to_owned));
                }
            }
        }
        Err(bad())
    }

    /// The signature a sender would attach with `key` (decoded; for Ed25519 the sender's
    /// private key seed): header name and value pairs; `None` if the key is unusable.
    pub fn sign(
        &self,
        key: &Secret,
        body: &[u8],
        url: &str,
        msg_id: &str,
        timestamp: i64,
    ) -> Option<Vec<(HeaderName, String)>> {
        let timestamp_text = match &self.timestamp {
            Some((_, TimeUnit::Millis, _)) => (timestamp * 1000).to_string(),
            _ => timestamp.to_string(),
        };
        let form = self
            .signed
            .contains(&Part::SortedForm)
            .then(|| sorted_form(body))
            .flatten();
        let request = Request {
            headers: &HeaderMap::new(),
            method: "POST",
            body,
            urls: &[],
        };
        let parts = self.parts(
            &request,
            url,
            Some(&timestamp_text),
            Some(msg_id),
            form.as_deref(),
        );
        let tag = match self.algorithm {
            // The sender's private key: its 32-byte seed.
            Algorithm::Ed25519 => {
                use ed25519_dalek::Signer as _;
                let seed: [u8; 32] = key.expose().try_into().ok()?;
                ed25519_dalek::SigningKey::from_bytes(&seed)
                    .sign(&parts.concat())
                    .to_bytes()
                    .to_vec()
            }
            algorithm => mac(algorithm, key.expose(), &parts)?,
        };
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(tag),
            Encoding::Base64 => STANDARD.encode(tag),
        };
        let mut out = Vec::new();
        if let Some(names) = &self.message_id {
            out.push((names[0].clone(), msg_id.to_owned()));
        }
        if let Some((TimestampAt::Header(names), _, _)) = &self.timestamp {
            out.push((names[0].clone(), timestamp_text.clone()));
        }
        match &self.signature {
            SignatureAt::Header { names, prefix } => {
                out.push((names[0].clone(), format!("{prefix}{encoded}")))
            }
            SignatureAt::Versioned { names, version } => {
                out.push((names[0].clone(), format!("{version},{encoded}")))
            }
            SignatureAt::ListEntry { name, key } => {
                let value = match &self.timestamp {
                    Some((TimestampAt::ListEntry(t), _, _)) => {
                        format!("{t}={timestamp_text},{key}={encoded}")
                    }
                    _ => format!("{key}={encoded}"),
                };
                out.push((name.clone(), value));
            }
        }
        Some(out)
    }

    fn parts<'r>(
        &'r self,
        request: &Request<'r>,
        url: &'r str,
        timestamp: Option<&'r str>,
        message_id: Option<&'r str>,
        form: Option<&'r [u8]>,
    ) -> Vec<&'r [u8]> {
        self.signed
            .iter()
            .map(|part| match part {
                Part::Body => request.body,
                Part::Timestamp => timestamp.unwrap_or_default().as_bytes(),
                Part::MessageId => message_id.unwrap_or_default().as_bytes(),
                Part::Url => url.as_bytes(),
                Part::Method => request.method.as_bytes(),
                Part::SortedForm => form.unwrap_or_default(),
                Part::Literal(text) => text.as_bytes(),
            })
            .collect()
    }

    /// Whether `key` signed `parts` (for Ed25519, `message`: the parts concatenated).
    fn matches(
        &self,
        key: &[u8],
        parts: &[&[u8]],
        message: Option<&[u8]>,
        candidates: &[Vec<u8>],
    ) -> bool {
        if let Some(message) = message {
            let Some(key) = ed25519_key(key) else {
                return false;
            };
            return candidates.iter().any(|candidate| {
                ed25519_dalek::Signature::from_slice(candidate)
                    .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok())
            });
        }
        let Some(expected) = mac(self.algorithm, key, parts) else {
            return false;
        };
        candidates
            .iter()
            .any(|c| c.len() == expected.len() && bool::from(expected.as_slice().ct_eq(c)))
    }

    /// Every decodable signature the request presents (undecodable ones never match).
    fn candidates(&self, headers: &HeaderMap) -> Result<Vec<Vec<u8>>, Error> {
        let decode = |text: &str| -> Option<Vec<u8>> {
            match self.encoding {
                Encoding::Hex => hex::decode(text).ok(),
                Encoding::Base64 => STANDARD.decode(text).ok(),
            }
            .filter(|bytes| !bytes.is_empty())
        };
        Ok(match &self.signature {
            SignatureAt::Header { names, prefix } => {
                let text = first_header(headers, names)?;
                text.strip_prefix(prefix.as_str())
                    .map(str::trim)
                    .and_then(decode)
                    .into_iter()
                    .collect()
            }
            SignatureAt::ListEntry { name, key } => {
                list_entries(header_text(headers, name.as_str())?)
                    .filter(|(k, _)| k == key)
                    .filter_map(|(_, v)| decode(v))
                    .collect()
            }
            SignatureAt::Versioned { names, version } => first_header(headers, names)?
                .split_ascii_whitespace()
                .filter_map(|entry| entry.split_once(','))
                .filter(|(v, _)| v == version)
                .filter_map(|(_, s)| decode(s))
                .collect(),
        })
    }

    fn timestamp_text<'h>(
        &self,
        at: &TimestampAt,
        headers: &'h HeaderMap,
    ) -> Result<&'h str, Error> {
        match at {
            TimestampAt::Header(names) => first_header(headers, names),
            TimestampAt::ListEntry(key) => {
                let SignatureAt::ListEntry { name, .. } = &self.signature else {
                    return Err(Error::Internal(
                        "a list timestamp needs a list signature".into(),
                    ));
                };
                let mut found =
                    list_entries(header_text(headers, name.as_str())?).filter(|(k, _)| k == key);
                match (found.next(), found.next()) {
                    (Some((_, value)), None) => Ok(value),
                    (None, _) => Err(unauthorized(AuthFailure::MissingCredential)),
                    (Some(_), Some(_)) => Err(unauthorized(AuthFailure::MalformedCredential)),
                }
            }
        }
    }
}

/// What a recipe reads of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a str,
    pub body: &'a [u8],
    /// The public URLs the sender may have signed (Twilio), in the order tried.
    pub urls: &'a [String],
}

/// The text of the first of `names` present; `Missing` when none is.
fn first_header<'h>(headers: &'h HeaderMap, names: &[HeaderName]) -> Result<&'h str, Error> {
    names
        .iter()
        .find(|name| headers.contains_key(*name))
        .map_or(Err(unauthorized(AuthFailure::MissingCredential)), |name| {
            header_text(headers, name.as_str())
        })
}

/// `key=value` entries of a comma-separated list, trimmed.
fn list_entries(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The timestamp's text to sign, once it is digits and within `tolerance` of now.
fn checked_timestamp(
    text: &str,
    unit: TimeUnit,
    tolerance: Tolerance,
    now_unix_secs: i64,
    canonical: bool,
) -> Result<String, Error> {
    let malformed = || unauthorized(AuthFailure::MalformedCredential);
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let value: i64 = text.parse().map_err(|_| malformed())?;
    // Compared in the timestamp's own unit, so a millisecond tolerance is exact.
    let scale = match unit {
        TimeUnit::Seconds => 1,
        TimeUnit::Millis => 1000,
        TimeUnit::Either if value > 1_000_000_000_000 => 1000,
        TimeUnit::Either => 1,
    };
    let now = now_unix_secs.saturating_mul(scale);
    let too_old = now.saturating_sub(value) > tolerance.past_secs.saturating_mul(scale);
    let too_new = value.saturating_sub(now) > tolerance.future_secs.saturating_mul(scale);
    if too_old || too_new {
        return Err(unauthorized(AuthFailure::StaleTimestamp));
    }
    Ok(if canonical {
        value.to_string()
    } else {
        text.to_owned()
    })
}

/// The body's form fields sorted by name then value, each as name followed by value; `None` when
/// the body is not a form (not UTF-8 after decoding).
fn sorted_form(body: &[u8]) -> Option<Vec<u8>> {
    let mut fields = crate::provider::form_fields(body).ok()?;
    fields.sort();
    fields.dedup();
    Some(
        fields
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .collect::<String>()
            .into_bytes(),
    )
}

fn ed25519_key(bytes: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

/// The MAC of the concatenated parts; `None` for Ed25519 (not a MAC).
fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
        let mut mac = <M as Mac>::new_from_slice(key).ok()?;
        for part in parts {
            mac.update(part);
        }
        Some(mac.finalize().into_bytes().to_vec())
    }
    match algorithm {
        Algorithm::HmacSha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::HmacSha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::HmacSha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        Algorithm::Ed25519 => None,
    }
}

/// Parses a payload template: `{body}`, `{timestamp}`, `{method}`, `{url}`, `{id}`/`{svix-id}`
/// and literal text.
fn parse_payload_template(template: &str) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| Error::Config("the signed payload template has an unclosed {".into()))?;
        parts.push(match &rest[open + 1..open + close] {
            "body" => Part::Body,
            "timestamp" => Part::Timestamp,
            "method" => Part::Method,
            "url" => Part::Url,
            "id" | "svix-id" => Part::MessageId,
            _ => {
                return Err(Error::Config(
                    "the signed payload template knows {body}, {timestamp}, {method}, {url} and {id}"
                        .into(),
                ));
            }
        });
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    if !parts.contains(&Part::Body) {
        return Err(Error::Config(
            "the signed payload template must contain {body}".into(),
        ));
    }
    Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Each provider's published test vectors ([SDK], [SPEC]), and where none is published the
    //! vectors docs/PROVIDERS.md computed from the documented algorithm ([SELF]).
    use super::super::{Scheme, Signature, Verifier, parse_list};
    use super::*;
    use http::HeaderValue;

    fn verifier(scheme: &str, keys: &str) -> Verifier {
        let scheme = Scheme::parse(scheme, "x-signature", "").unwrap();
        Verifier::new(scheme, parse_list(keys), Vec::new()).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check(
        v: &Verifier,
        pairs: &[(&str, &str)],
        body: &[u8],
        now: i64,
    ) -> Result<(), AuthFailure> {
        match v.verify(&headers(pairs), None, body, now) {
            Ok(_) => Ok(()),
            Err(Error::Unauthorized(failure)) => Err(failure),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn check_urls(v: &Verifier, signature: &str, body: &[u8], urls: &[String]) -> bool {
        let headers = headers(&[("x-twilio-signature", signature)]);
        let request = Request {
            headers: &headers,
            method: "POST",
            body,
            urls,
        };
        v.verify_request(&request, None, 0).is_ok()
    }

    const RETELL_BODY: &[u8] = br#"{"event":"call_ended"}"#;
    const RETELL_HEADER: &str =
        "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e";

    #[test]
    fn retell_sdk_vector_and_its_tolerance_to_the_millisecond() {
        let v = verifier("retell", "test-api-key");
        let sig = [("x-retell-signature", RETELL_HEADER)];
        assert_eq!(check(&v, &sig, RETELL_BODY, 1_700_000_000), Ok(()));
        // ±300000 ms passes, ±300001 ms fails (the SDKs' own tests), at a whole-second clock.
        let digest = RETELL_HEADER.split_once(",d=").unwrap().1;
        for (ts, ok) in [
            (1_700_000_300_000_i64, true),
            (1_699_999_700_000, true),
            (1_700_000_300_001, false),
            (1_699_999_699_999, false),
        ] {
            let key = Secret::new("test-api-key");
            let recipe = Recipe::named("retell", "", "").unwrap();
            let signed = recipe.sign(&key, RETELL_BODY, "", "", 0).unwrap();
            assert!(signed[0].1.starts_with("v=0,d="));
            let mac = mac(
                Algorithm::HmacSha256,
                b"test-api-key",
                &[RETELL_BODY, ts.to_string().as_bytes()],
            )
            .unwrap();
            let value = format!("v={ts},d={}", hex::encode(mac));
            let result = check(
                &v,
                &[("x-retell-signature", &value)],
                RETELL_BODY,
                1_700_000_000,
            );
            assert_eq!(result.is_ok(), ok, "{ts}");
            if !ok {
                assert_eq!(result, Err(AuthFailure::StaleTimestamp));
            }
        }
        assert_eq!(digest.len(), 64);
    }

    #[test]
    fn retell_rejects_what_its_sdks_reject() {
        let v = verifier("retell", "test-api-key");
        let digest = RETELL_HEADER.split_once(",d=").unwrap().1;
        for value in [
            format!("prefix-{RETELL_HEADER}"),
            format!("d={digest},v=1700000000000x"),
            format!("{RETELL_HEADER}-suffix"),
            format!("v=1700000000000,d={}", &digest[..62]),
            format!("v=1700000000000,d={}zz", &digest[..62]),
            format!("v=-1700000000000,d={digest}"),
            "v=1700000000000".to_owned(),
        ] {
            assert!(
                check(
                    &v,
                    &[("x-retell-signature", &value)],
                    RETELL_BODY,
                    1_700_000_000
                )
                .is_err(),
                "{value}"
            );
        }
        // An extra entry does not hide the right one; the body alone is not what is signed.
        let extra = format!("{RETELL_HEADER},extra=value");
        assert_eq!(
            check(
                &v,
                &[("x-retell-signature", &extra)],
                RETELL_BODY,
                1_700_000_000
            ),
            Ok(())
        );
        assert!(
            check(
                &v,
                &[("x-retell-signature", RETELL_HEADER)],
                br#"{"event":"call_started"}"#,
                1_700_000_000
            )
            .is_err()
        );
    }

    #[test]
    fn bland_vector() {
        let scheme = Scheme::parse("hmac-sha256", "X-Webhook-Signature", "").unwrap();
        let v = Verifier::new(scheme, parse_list("bland_test_secret"), Vec::new()).unwrap();
        let sig = "cc8a0f9f668a6380d5e691e7f5367bf46a909657bc5f7fd87aa8cfaf8131cae9";
        let body = br#"{"call_id":"c1","status":"completed"}"#;
        assert_eq!(check(&v, &[("x-webhook-signature", sig)], body, 0), Ok(()));
        assert!(
            check(
                &v,
                &[("x-webhook-signature", sig)],
                br#"{"call_id":"c2","status":"completed"}"#,
                0
            )
            .is_err()
        );
    }

    #[test]
    fn vapi_hmac_plan_default_vector_and_overrides() {
        let v = verifier("hmac", "vapi_test_secret");
        let body =
            br#"{"message":{"type":"status-update","status":"ended","call":{"id":"call-1"}}}"#;
        let sig = "e0f7c5c656ee84db4e6f511cad1d52019416e711fd47846274e6ab8587154d95";
        let now = 1_739_537_297;
        assert_eq!(
            check(
                &v,
                &[("x-signature", sig), ("x-timestamp", "1739537297123")],
                body,
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &v,
                &[("x-signature", sig), ("x-timestamp", "1739537297123")],
                body,
                now + 301
            ),
            Err(AuthFailure::StaleTimestamp)
        );
        // The body-only variant some integrations use, through configuration.
        let overrides = Overrides {
            header: Some("x-vapi-signature"),
            payload: Some("{body}"),
            ..Overrides::default()
        };
        let scheme = Scheme::configure("hmac", "", "", &overrides).unwrap();
        let body_only = Verifier::new(scheme, parse_list("vapi_test_secret"), Vec::new()).unwrap();
        let sig = "6ffa2d7c2af99f07b1d9de10f60cd6d087a796ac59d2d5c7324fdc77e9eecedd";
        assert_eq!(
            check(
                &body_only,
                &[("x-vapi-signature", sig), ("x-timestamp", "1")],
                body,
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn vapi_static_secret_header() {
        let scheme = Scheme::parse("static-header", "X-Vapi-Secret", "").unwrap();
        let v = Verifier::new(scheme, parse_list("s3cret-one, s3cret-two"), Vec::new()).unwrap();
        assert_eq!(
            check(&v, &[("x-vapi-secret", "s3cret-two")], b"{}", 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("x-vapi-secret", "s3cret-on")], b"{}", 0),
            Err(AuthFailure::BadCredential)
        );
        assert_eq!(
            check(&v, &[], b"{}", 0),
            Err(AuthFailure::MissingCredential)
        );
        // A bearer token is the same scheme with a header and a prefix.
        let overrides = Overrides {
            header: Some("Authorization"),
            prefix: Some("Bearer "),
            ..Overrides::default()
        };
        let bearer = Scheme::configure("static-header", "X-Vapi-Secret", "", &overrides).unwrap();
        let v = Verifier::new(bearer, parse_list("tok"), Vec::new()).unwrap();
        assert_eq!(
            check(&v, &[("authorization", "Bearer tok")], b"{}", 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("authorization", "tok")], b"{}", 0),
            Err(AuthFailure::BadCredential)
        );
    }

    #[test]
    fn elevenlabs_vector_and_its_half_hour() {
        let v = verifier("elevenlabs", "wsec_test_secret");
        let body = br#"{"type":"post_call_transcription","event_timestamp":1739537297,"data":{"agent_id":"xyz","conversation_id":"abc"}}"#;
        let sig = [(
            "elevenlabs-signature",
            "t=1739537297,v0=56c255208ac31944e833c7edacb091a1d845f075a6a781576269c7ff188bc125",
        )];
        assert_eq!(check(&v, &sig, body, 1_739_537_297), Ok(()));
        assert_eq!(check(&v, &sig, body, 1_739_537_297 + 1800), Ok(()));
        assert_eq!(
            check(&v, &sig, body, 1_739_537_297 + 1801),
            Err(AuthFailure::StaleTimestamp)
        );
        // Node's `req.headers["ElevenLabs-Signature"]` is undefined; header names are case-blind here.
        let upper = [("ElevenLabs-Signature", sig[0].1)];
        assert_eq!(check(&v, &upper, body, 1_739_537_297), Ok(()));
    }

    fn twilio_params() -> Vec<u8> {
        b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212".to_vec()
    }

    #[test]
    fn twilio_sdk_vectors() {
        let v = verifier("twilio", "12345");
        let body = twilio_params();
        for (url, sig) in [
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
        ] {
            assert!(check_urls(&v, sig, &body, &[url.to_owned()]), "{url}");
            assert!(
                !check_urls(
                    &v,
                    sig,
                    &body,
                    &["https://mycompany.com/other.php".to_owned()]
                ),
                "{url}"
            );
        }
        // A name sent several times: its distinct values, sorted.
        let repeated = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
        assert!(check_urls(
            &v,
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
            repeated,
            &["https://mycompany.com/myapp.php?foo=1&bar=2".to_owned()]
        ));
        // Signing reproduces the first vector.
        let Signature::Headers(signed) =
            v.sign_for(&body, "https://mycompany.com/myapp.php?foo=1&bar=2", "", 0)
        else {
            panic!("twilio signs with a header")
        };
        assert_eq!(signed[0].1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn twilio_signs_decoded_values() {
        let v = verifier("twilio", "12345");
        let body = b"CallSid=CA00000000000000000000000000000001&CallStatus=no-answer&From=%2B15005550006&To=%2B15005550001&Timestamp=Sun%2C+25+Mar+2018+09%3A53%3A19+%2B0000";
        let urls = ["https://hooks.example.com/webhooks/twilio".to_owned()];
        assert!(check_urls(&v, "8mPsgNJypXfCZTtWD7NK+xoOoSk=", body, &urls));
        assert!(!check_urls(&v, "0yVJku5jaPSm1Z4BQqRG/NJBBs0=", body, &urls));
    }

    #[test]
    fn telnyx_ed25519_vector() {
        let v = verifier("telnyx", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        let body =
            br#"{"data":{"event_type":"call.hangup","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"}}"#;
        let sig = "RmHAa1XgoWQoXUq+UulYKVrfjsxIasWWFupfTB8oXOb7Vx4+abrmL6sacp+LpWglWJ1gsZxl7zCufwt0ZRl1AQ==";
        let pairs = [
            ("telnyx-signature-ed25519", sig),
            ("telnyx-timestamp", "1700000000"),
        ];
        assert_eq!(check(&v, &pairs, body, 1_700_000_000), Ok(()));
        assert_eq!(
            check(&v, &pairs, body, 1_700_000_301),
            Err(AuthFailure::StaleTimestamp)
        );
        let other_time = [
            ("telnyx-signature-ed25519", sig),
            ("telnyx-timestamp", "1700000001"),
        ];
        assert_eq!(
            check(&v, &other_time, body, 1_700_000_000),
            Err(AuthFailure::BadCredential)
        );
        assert!(check(&v, &pairs, &body[1..], 1_700_000_000).is_err());
        // Its keys are public keys: a key that is not one is a configuration error.
        let scheme = Scheme::parse("telnyx", "", "").unwrap();
        assert!(scheme.uses_public_keys());
        assert!(Verifier::new(scheme, parse_list("c2hvcnQ="), Vec::new()).is_err());
    }

    #[test]
    fn standard_webhooks_vector_under_svix_names() {
        let v = verifier(
            "standard-webhooks",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        );
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let pairs = [
            ("svix-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            ("svix-timestamp", "1649367553"),
            (
                "svix-signature",
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ];
        assert_eq!(check(&v, &pairs, body, 1_649_367_553), Ok(()));
    }

    #[test]
    fn payload_templates_and_bad_overrides() {
        assert_eq!(
            parse_payload_template("{svix-id}.{timestamp}.{body}").unwrap(),
            [
                Part::MessageId,
                Part::Literal(".".into()),
                Part::Timestamp,
                Part::Literal(".".into()),
                Part::Body
            ]
        );
        for bad in ["{timestamp}", "{body", "{body}{nope}"] {
            assert!(parse_payload_template(bad).is_err(), "{bad}");
        }
        let bad = |o: Overrides<'_>| Scheme::configure("hmac", "", "", &o).is_err();
        assert!(bad(Overrides {
            algorithm: Some("md5"),
            ..Overrides::default()
        }));
        assert!(bad(Overrides {
            encoding: Some("base32"),
            ..Overrides::default()
        }));
        assert!(bad(Overrides {
            tolerance_secs: Some("-1"),
            ..Overrides::default()
        }));
        assert!(bad(Overrides {
            header: Some("bad header"),
            ..Overrides::default()
        }));
        assert!(
            Scheme::configure(
                "retell",
                "",
                "",
                &Overrides {
                    prefix: Some("x"),
                    ..Overrides::default()
                }
            )
            .is_err()
        );
        assert!(
            Scheme::configure(
                "token",
                "",
                "",
                &Overrides {
                    payload: Some("{body}"),
                    ..Overrides::default()
                }
            )
            .is_err()
        );
    }
}
