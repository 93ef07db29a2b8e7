//! The provider registry and what provider modules share.
//!
//! Each provider module is parallel in shape: its payload types, its default authentication, and
//! its mapping to canonical events. Adding a provider means one new module, one line in
//! [`REGISTRY`], its fixtures, and its route parameters in `template.yaml`.

mod clawops;
mod synthflow;
mod vox;

use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, DeliveryContext, EventData, EventType, dedupe_key};
use crate::storable;
use serde::de::DeserializeOwned;
use std::fmt;

pub use clawops::ClawOps;
pub use synthflow::Synthflow;
pub use vox::Vox;

/// How a provider authenticates when its configuration does not say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthDefaults {
    /// `hmac-sha256`, `standard-webhooks` or `token`.
    pub scheme: &'static str,
    /// The signature header for `hmac-sha256`.
    pub header: &'static str,
    /// What precedes the hex digest in that header.
    pub prefix: &'static str,
}

pub trait Provider: Sync + Send + fmt::Debug {
    /// The route segment and record prefix: `vox`, `clawops`, …
    fn name(&self) -> &'static str;

    fn auth_defaults(&self) -> AuthDefaults;

    /// The provider's own mapping of one verified raw body to its canonical events (at least
    /// one). Callers use `parse` on `dyn Provider`, which also makes the events storable.
    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>>;
}

impl dyn Provider {
    /// Turns one verified raw body into its canonical events, each one storable in DynamoDB (see
    /// [`crate::storable`]), or refuses it. Ingest and the merge functions' re-parse of the
    /// stored body both come through here, so an event is the same whichever side builds it, and
    /// no provider module can forget the normalization.
    pub fn parse(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let mut events = self.parse_payload(body, ctx)?;
        for event in &mut events {
            storable::storable_event(event)?;
        }
        Ok(events)
    }
}

/// Every provider callhook serves.
pub static REGISTRY: &[&dyn Provider] = &[&Vox, &ClawOps, &Synthflow];

pub fn lookup(name: &str) -> Option<&'static dyn Provider> {
    REGISTRY.iter().copied().find(|p| p.name() == name)
}

/// Deserializes a body into a provider's payload type, telling a body that is not a JSON object
/// (400) from one whose fields are unusable (422). Messages name the field, never its value.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(Error::malformed(
                "The request body is empty; a JSON object is expected.",
            ));
        }
        Some(b'{') => {}
        Some(_) => return Err(Error::malformed("The request body must be a JSON object.")),
    }
    // The fast path: a plain parse. Tracking the path of every value costs more than the parse
    // itself, so only a body that fails is parsed again, with tracking, for the field's name.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        describe_json_error(&path, error.inner())
    })?;
    de.end().map_err(|error| describe_json_error("", &error))?;
    Ok(value)
}

fn describe_json_error(path: &str, error: &serde_json::Error) -> Error {
    use serde_json::error::Category;
    let text = error.to_string();
    match error.classify() {
        Category::Data => {
            let qualified = |field: &str| {
                if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                }
            };
            // serde names the field (never a value) in these two messages.
            let field_of = |prefix: &str| {
                text.strip_prefix(prefix)
                    .map(|rest| qualified(rest.split('`').next().unwrap_or_default()))
            };
            if let Some(full) = field_of("missing field `") {
                Error::unusable(format_args!("The required field `{full}` is missing."))
            } else if let Some(full) = field_of("duplicate field `") {
                // Valid JSON, but which of the two values is meant cannot be known.
                Error::unusable(format_args!("The field `{full}` appears more than once."))
            } else {
                Error::unusable(format_args!(
                    "The field `{path}` has the wrong type or value."
                ))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            if text.contains("recursion limit") {
                Error::malformed("The JSON body is nested too deeply (more than 128 levels).")
            } else {
                Error::malformed(format_args!(
                    "The request body is not valid JSON (line {}, column {}).",
                    error.line(),
                    error.column()
                ))
            }
        }
    }
}

/// Requires a non-empty id, naming the field when it is missing.
pub(crate) fn required_id(value: Option<String>, field: &str) -> Result<String> {
    match value {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(Error::unusable(format_args!(
            "The required field `{field}` is missing or empty."
        ))),
    }
}

/// One delivery being parsed: what every canonical event of it shares.
pub(crate) struct Source<'a> {
    pub provider: &'static str,
    pub ctx: &'a DeliveryContext,
    pub body: &'a [u8],
}

impl Source<'_> {
    /// Builds a canonical event of this delivery, with its dedupe key.
    pub fn event(
        &self,
        event_type: EventType,
        provider_event: &str,
        call_id: &str,
        occurred_at: Option<i64>,
        data: EventData,
    ) -> CanonicalEvent {
        CanonicalEvent {
            provider: self.provider,
            event_type,
            provider_event: provider_event.to_owned(),
            call_id: call_id.to_owned(),
            dedupe_key: dedupe_key(self.provider, event_type, call_id, self.ctx, self.body),
            occurred_at,
            received_at: self.ctx.received_at,
            data,
        }
    }
}

/// What a provider's end status means for callhook's `outcome`.
pub(crate) fn outcome_of(status: &str) -> String {
    let lower = status.trim().to_ascii_lowercase().replace('-', "_");
    match lower.as_str() {
        "no_answer" | "dial_no_answer" | "noanswer" | "not_answered" => "no_answer",
        "busy" | "dial_busy" => "busy",
        "failed" | "dial_failed" | "error" => "failed",
        "voicemail" | "voicemail_reached" | "hangup_on_voicemail" => "voicemail",
        "canceled" | "cancelled" => "canceled",
        "completed"
        | "ended"
        | "user_hangup"
        | "agent_hangup"
        | "agent_goodbye"
        | "human_goodbye"
        | "call_transfer"
        | "max_duration"
        | "max_duration_reached"
        | "inactivity" => "completed",
        _ => return status.trim().to_owned(),
    }
    .to_owned()
}
