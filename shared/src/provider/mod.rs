//! The provider registry and what provider modules share.
//!
//! Each provider module is parallel in shape: its payload types, its default authentication, and
//! its mapping to canonical events. Adding a provider means one new module, one line in
//! [`REGISTRY`], its fixtures, and its route parameters in `template.yaml`.

mod bland;
mod clawops;
mod elevenlabs;
mod retell;
mod synthflow;
mod telnyx;
mod twilio;
mod vapi;
mod vox;

use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, DeliveryContext, EventData, EventType, dedupe_key};
use crate::storable;
use serde::Deserialize;
use std::fmt;

pub use bland::Bland;
pub use clawops::ClawOps;
pub use elevenlabs::ElevenLabs;
pub use retell::Retell;
pub use synthflow::Synthflow;
pub use telnyx::Telnyx;
pub use twilio::{Twilio, form_fields};
pub use vapi::Vapi;
pub use vox::Vox;

/// How a provider authenticates when its configuration does not say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthDefaults {
    /// A scheme name of [`crate::auth::Scheme::parse`]: a signature recipe (`hmac-sha256`,
    /// `retell`, `twilio`, …), `static-header`, `token`.
    pub scheme: &'static str,
    /// The header for the schemes that take one (`hmac-sha256`, `static-header`).
    pub header: &'static str,
    /// What precedes the signature or secret in that header.
    pub prefix: &'static str,
}

pub trait Provider: Sync + Send + fmt::Debug {
    /// The route segment and record prefix: `vox`, `clawops`, …
    fn name(&self) -> &'static str;

    fn auth_defaults(&self) -> AuthDefaults;

    /// The provider's own mapping of one verified raw body to its canonical events (at least
    /// one). Callers use `parse` on `dyn Provider`, which also makes the events storable.
    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>>;

    /// Whether a verified body is one callhook keeps at all: `Err` refuses it, stored nowhere
    /// (ElevenLabs' call audio, which no Lambda invocation or DynamoDB item can hold).
    fn admits(&self, _body: &[u8]) -> Result<()> {
        Ok(())
    }

    /// Whether the sender waits for an answer to this event that only its assistant or tool
    /// server can give (Vapi's `assistant-request`): ingest logs such a delivery as a
    /// configuration error, since callhook must never be that server.
    fn expects_answer(&self, _provider_event: &str) -> bool {
        false
    }
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
pub static REGISTRY: &[&dyn Provider] = &[
    &Vox,
    &ClawOps,
    &Synthflow,
    &Retell,
    &Vapi,
    &Bland,
    &ElevenLabs,
    &Twilio,
    &Telnyx,
];

pub fn lookup(name: &str) -> Option<&'static dyn Provider> {
    REGISTRY.iter().copied().find(|p| p.name() == name)
}

/// Deserializes a body into a provider's payload type, telling a body that is not a JSON object
/// (400) from one whose fields are unusable (422). Messages name the field, never its value.
pub(crate) fn from_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(Error::malformed(
                "The request body is empty; a JSON object is expected.",
            ));
        }
        Some(b'{') => {}
        Some(_) => return Err(Error::malformed("The request body must be a JSON object.")),
    }
    // The fast path: the body's UTF-8 validated once, then a plain parse of the text (a parse
    // of bytes would validate each string it keeps again). Tracking the path of every value
    // costs more than the parse itself, so only a body that fails is parsed again, with
    // tracking, for the field's name (and a body that is not UTF-8, for where).
    if let Ok(text) = simdutf8::basic::from_utf8(body) {
        if let Ok(value) = serde_json::from_str(text) {
            return Ok(value);
        }
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

impl Source<'_> {
    /// Like [`Source::event`], but deduplicated on `identity`, the provider's own name for this
    /// delivery (Telnyx's `data.id`, Twilio's `CallSid` and `SequenceNumber`, Bland's call id
    /// and delivery kind), instead of on the raw body, when the sender gave no delivery id: a
    /// retry whose body differs (re-signed, re-serialized) is still the same delivery.
    pub fn event_identified(
        &self,
        identity: &str,
        event_type: EventType,
        provider_event: &str,
        call_id: &str,
        occurred_at: Option<i64>,
        data: EventData,
    ) -> CanonicalEvent {
        let ctx = DeliveryContext {
            received_at: self.ctx.received_at,
            delivery_id: Some(
                self.ctx
                    .delivery_id
                    .clone()
                    .unwrap_or_else(|| identity.to_owned()),
            ),
        };
        Source {
            provider: self.provider,
            ctx: &ctx,
            body: self.body,
        }
        .event(event_type, provider_event, call_id, occurred_at, data)
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

/// What the provider modules' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::event::{CallPatch, CanonicalEvent, EventData};

    /// The call data of an event that must carry some.
    #[allow(clippy::panic)]
    pub fn patch(event: &CanonicalEvent) -> &CallPatch {
        match &event.data {
            EventData::Call(patch) => patch,
            other => panic!("expected call data, got {other:?}"),
        }
    }
}
