//! ClawOps call-status and message webhooks.
//!
//! Call events carry `call_id, status, direction, from, to, duration, created_at`. The event name
//! comes from an `event` or `type` field when present, else it is inferred from `status` (ClawOps'
//! own examples dispatch on `status` alone). `created_at` may be ISO 8601 or epoch seconds or
//! milliseconds. Message fields are not documented: `message_id`/`id`, `from`, `to`,
//! `body`/`text`, `created_at` are read and everything else is kept as sent.

use super::{AuthDefaults, Provider, Source, from_json, outcome_of, required_id};
use crate::error::{Error, Result};
use crate::event::{
    CallPatch, CallStatus, CanonicalEvent, DeliveryContext, EventData, EventType, Message,
};
use crate::timefmt::{seconds_to_ms, value_to_ms};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct ClawOps;

const NAME: &str = "clawops";

impl Provider for ClawOps {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        AuthDefaults {
            scheme: "hmac-sha256",
            header: "X-ClawOps-Signature",
            prefix: "sha256=",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let payload: Map<String, Value> = from_json(body)?;
        let status = text(&payload, "status")?;
        let name = match text(&payload, "event")?.or(text(&payload, "type")?) {
            Some(name) => name,
            None => infer_event(status.as_deref(), &payload)
                .ok_or_else(|| {
                    Error::unusable("The payload names no event (`event`, `type` or `status`).")
                })?
                .to_owned(),
        };
        let created_at = time(&payload, "created_at")?;

        let (event_type, status_now) = match name.as_str() {
            "call.initiated" => (EventType::CallStarted, CallStatus::Initiated),
            "call.ringing" => (EventType::CallStarted, CallStatus::Ringing),
            "call.answered" => (EventType::CallStarted, CallStatus::InProgress),
            "call.completed" => (EventType::CallEnded, CallStatus::Ended),
            "message.received" => {
                return message(payload, &name, created_at, &src).map(|e| vec![e]);
            }
            _ => {
                // Kept even without a usable call id (a blank one included): filed under
                // `unknown` rather than under a key of spaces.
                let call_id = text(&payload, "call_id")?
                    .filter(|id| !id.trim().is_empty())
                    .unwrap_or_else(|| "unknown".into());
                return Ok(vec![src.event(
                    EventType::Unknown,
                    &name,
                    &call_id,
                    created_at,
                    EventData::Opaque,
                )]);
            }
        };

        let call_id = required_id(text(&payload, "call_id")?, "call_id")?;
        let duration_ms = match payload.get("duration") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_f64()
                    .and_then(seconds_to_ms)
                    .ok_or_else(|| wrong("duration"))?,
            ),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse()
                    .ok()
                    .and_then(seconds_to_ms)
                    .ok_or_else(|| wrong("duration"))?,
            ),
            Some(_) => return Err(wrong("duration")),
        };
        let mut patch = CallPatch {
            direction: text(&payload, "direction")?,
            from_number: text(&payload, "from")?,
            to_number: text(&payload, "to")?,
            status: Some(status_now),
            provider_status: status.clone(),
            ..CallPatch::default()
        };
        match status_now {
            CallStatus::InProgress => patch.started_at = created_at,
            CallStatus::Ended => {
                patch.ended_at = created_at;
                patch.duration_ms = duration_ms;
                patch.outcome = Some(outcome_of(status.as_deref().unwrap_or("completed")));
            }
            _ => {}
        }
        Ok(vec![src.event(
            event_type,
            &name,
            &call_id,
            created_at,
            EventData::Call(Box::new(patch)),
        )])
    }
}

fn infer_event(status: Option<&str>, payload: &Map<String, Value>) -> Option<&'static str> {
    let status = status.map(|s| s.trim().to_ascii_lowercase().replace('-', "_"));
    Some(match status.as_deref() {
        Some("initiated" | "queued") => "call.initiated",
        Some("ringing") => "call.ringing",
        Some("answered" | "in_progress") => "call.answered",
        Some("completed" | "no_answer" | "busy" | "failed" | "canceled" | "cancelled") => {
            "call.completed"
        }
        Some("received") => "message.received",
        _ if payload.contains_key("message_id")
            || payload.contains_key("body")
            || payload.contains_key("text") =>
        {
            "message.received"
        }
        _ => return None,
    })
}

fn message(
    mut payload: Map<String, Value>,
    name: &str,
    created_at: Option<i64>,
    src: &Source<'_>,
) -> Result<CanonicalEvent> {
    let message_id = match text(&payload, "message_id")? {
        Some(id) => Some(id),
        None => text(&payload, "id")?,
    };
    let message_id = required_id(message_id, "message_id")?;
    let message_body = match text(&payload, "body")? {
        Some(b) => Some(b),
        None => text(&payload, "text")?,
    };
    let from_number = text(&payload, "from")?;
    let to_number = text(&payload, "to")?;
    for known in [
        "message_id",
        "id",
        "from",
        "to",
        "body",
        "text",
        "created_at",
        "event",
        "type",
    ] {
        payload.remove(known);
    }
    let data = Message {
        provider: NAME.to_owned(),
        message_id: message_id.clone(),
        from_number,
        to_number,
        body: message_body,
        created_at,
        received_at: Some(src.ctx.received_at),
        extra: payload,
    };
    Ok(src.event(
        EventType::MessageReceived,
        name,
        &message_id,
        created_at,
        EventData::Message(Box::new(data)),
    ))
}

/// A string field; numbers are accepted as their decimal text (ids and phone numbers are
/// sometimes sent as numbers), anything else is a wrong type.
fn text(payload: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(wrong(key)),
    }
}

fn time(payload: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    payload
        .get(key)
        .map_or(Ok(None), |v| value_to_ms(v).map_err(|_| wrong(key)))
}

fn wrong(field: &str) -> Error {
    Error::unusable(format_args!(
        "The field `{field}` has the wrong type or value."
    ))
}
