//! Vapi server messages: `{"message": {"type", …}}` posted to a server URL.
//!
//! `status-update` gives the lifecycle (queued and ringing, in progress, forwarding, ended),
//! `end-of-call-report` the final view of the call after post-processing (`call_ended`, plus
//! `call_analyzed` for its cost and analysis), a `transcript` whose `transcriptType` is `final` one
//! live turn, and `conversation-update` a `mid_call` with the call's values only (its message list
//! is the conversation so far, never authoritative). Every other type (partial transcripts,
//! `hang`, `speech-update`, `chat.*`, …) is stored as `unknown` and never refused. Instants are
//! ISO 8601 (`startedAt`, `endedAt`) or epoch milliseconds (`timestamp`); the cost is in USD and
//! kept as the JSON number sent; the duration is `endedAt − startedAt`.
//!
//! Deliveries are deduplicated on Vapi's own identity of the message (docs/PROVIDERS.md §3), not on
//! the body: `(call.id, type, status)` for `status-update`, `(call.id, type)` for
//! `end-of-call-report`, `(call.id, type, timestamp)` for a final transcript.
//!
//! **callhook must never be the assistant server.** `assistant-request`, `tool-calls`,
//! `transfer-destination-request` and `knowledge-base-request` wait for an answer body (an
//! assistant, tool results, a destination, documents; `assistant-request` within 7.5 s), and
//! callhook's `{"received":true}` is none of them: an inbound call whose assistant was to come
//! from callhook fails. Such a message means the phone number, org or tool server points at
//! callhook by mistake; it is stored as `unknown` and [`Vapi::expects_answer`] lets ingest log
//! the configuration error. Subscribe callhook to `status-update` and `end-of-call-report`
//! (plus `transcript[transcriptType="final"]` and `conversation-update` if wanted) through
//! `assistant.serverMessages` only.

use super::vox::json_type;
use super::{AuthDefaults, Provider, Source, from_json, required_id};
use crate::error::Result;
use crate::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, Cost, DeliveryContext,
    EventData, EventType, Turn,
};
use crate::timefmt::{de_flexible, value_to_ms};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, Default)]
pub struct Vapi;

const NAME: &str = "vapi";

/// The final-only subscription's name of a final transcript (`assistant.serverMessages`).
const FINAL_TRANSCRIPT: &str = "transcript[transcriptType=\"final\"]";

impl Vapi {
    /// Message types whose sender waits for an answer body callhook never gives: the four a
    /// server URL answers, and the two that go to dedicated voice and endpointing servers.
    pub const ANSWER_EXPECTING: [&'static str; 6] = [
        "assistant-request",
        "tool-calls",
        "transfer-destination-request",
        "knowledge-base-request",
        "voice-request",
        "call.endpointing.request",
    ];

    /// True for a `message.type` (the stored event's `provider_event`) whose sender expects an
    /// answer: receiving one is a configuration error to log, never something to answer.
    pub fn expects_answer(message_type: &str) -> bool {
        Self::ANSWER_EXPECTING.contains(&message_type.trim())
    }
}

/// What every message is read for first, leniently: enough to route it, or to store a type
/// callhook does not interpret whatever its other fields hold.
#[derive(Debug, Deserialize)]
struct Head {
    message: HeadMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "de_call_id")]
    call: Option<String>,
    #[serde(default, deserialize_with = "de_loose_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "de_loose_text")]
    transcript_type: Option<String>,
    #[serde(default, deserialize_with = "de_loose_time")]
    timestamp: Option<i64>,
}

/// The types callhook interprets, read strictly: a field of the wrong type is refused (422).
#[derive(Debug, Deserialize)]
struct Payload {
    message: Message,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Message {
    status: Option<String>,
    ended_reason: Option<String>,
    #[serde(deserialize_with = "de_flexible")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    started_at: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    ended_at: Option<i64>,
    #[serde(deserialize_with = "de_amount")]
    cost: Option<Number>,
    call: Option<Call>,
    customer: Option<Party>,
    phone_number: Option<Party>,
    assistant: Option<AssistantIn>,
    assistant_version: Option<String>,
    artifact: Option<Artifact>,
    analysis: Option<AnalysisIn>,
    role: Option<String>,
    transcript: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Call {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    ended_reason: Option<String>,
    assistant_id: Option<String>,
    squad_id: Option<String>,
    workflow_id: Option<String>,
    assistant_version: Option<String>,
    #[serde(deserialize_with = "de_flexible")]
    started_at: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    ended_at: Option<i64>,
    #[serde(deserialize_with = "de_amount")]
    cost: Option<Number>,
    customer: Option<Party>,
    phone_number: Option<Party>,
    assistant_overrides: Option<Overrides>,
    assistant: Option<AssistantIn>,
    artifact: Option<Artifact>,
    analysis: Option<AnalysisIn>,
}

/// A customer or a phone number: only its number is read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Party {
    number: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Overrides {
    variable_values: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AssistantIn {
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Artifact {
    messages: Option<Vec<ArtifactMessage>>,
    recording: Option<Recording>,
    /// Deprecated in favour of `recording`; read last.
    recording_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Recording {
    mono: Option<Mono>,
    stereo_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Mono {
    combined_url: Option<String>,
}

/// One of `artifact.messages`: a user, bot or system message, a `tool_calls` message or a
/// `tool_call_result`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArtifactMessage {
    role: Option<String>,
    message: Option<String>,
    tool_calls: Option<Vec<Value>>,
    result: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnalysisIn {
    summary: Option<String>,
    structured_data: Option<Value>,
    success_evaluation: Option<Value>,
}

/// How one message is mapped, decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Status(EventType, CallStatus),
    Report,
    FinalTranscript,
    ConversationUpdate,
}

/// `None` for a message stored as `unknown`.
fn route(head: &HeadMessage) -> Option<Route> {
    Some(match head.kind.as_str() {
        "status-update" => match head.status.as_deref() {
            Some("scheduled" | "queued") => {
                Route::Status(EventType::CallStarted, CallStatus::Queued)
            }
            Some("ringing") => Route::Status(EventType::CallStarted, CallStatus::Ringing),
            Some("in-progress") => Route::Status(EventType::CallStarted, CallStatus::InProgress),
            Some("forwarding") => Route::Status(EventType::MidCall, CallStatus::InProgress),
            Some("ended") => Route::Status(EventType::CallEnded, CallStatus::Ended),
            // `not-found`, `deletion-failed` and any new status say nothing about a live call.
            _ => return None,
        },
        "end-of-call-report" => Route::Report,
        // (rule) Partial transcripts are not turns: they are stored as `unknown`.
        "transcript" if head.transcript_type.as_deref() == Some("final") => Route::FinalTranscript,
        FINAL_TRANSCRIPT if matches!(head.transcript_type.as_deref(), None | Some("final")) => {
            Route::FinalTranscript
        }
        "conversation-update" => Route::ConversationUpdate,
        _ => return None,
    })
}

impl Provider for Vapi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn expects_answer(&self, provider_event: &str) -> bool {
        Self::expects_answer(provider_event)
    }

    fn auth_defaults(&self) -> AuthDefaults {
        // The legacy static secret header; bearer and HMAC credentials are configured instead.
        AuthDefaults {
            scheme: "static-header",
            header: "x-vapi-secret",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let Head { message: head } = from_json(body)?;
        let Some(route) = route(&head) else {
            // Kept even without a usable call id (chat and session messages name none): filed
            // under `unknown` rather than under a key of spaces.
            let call_id = head
                .call
                .filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| "unknown".into());
            return Ok(vec![src.event(
                EventType::Unknown,
                &head.kind,
                &call_id,
                head.timestamp,
                EventData::Opaque,
            )]);
        };

        let Payload { message } = from_json(body)?;
        let call = message.call.as_ref();
        let call_id = required_id(call.and_then(|c| c.id.clone()), "message.call.id")?;
        let kind = head.kind.as_str();
        let mut patch = common_patch(&message);

        match route {
            Route::Status(event_type, status) => {
                let status_word = message.status.as_deref().unwrap_or_default();
                patch.status = Some(status);
                patch.provider_status = message.status.clone();
                patch.started_at = message.started_at.or(call.and_then(|c| c.started_at));
                if status == CallStatus::Ended {
                    end_fields(&message, &mut patch, false);
                }
                let at = message.timestamp.or(match status {
                    CallStatus::Ended => patch.ended_at,
                    CallStatus::InProgress => patch.started_at,
                    _ => None,
                });
                let identity = identity(&[&call_id, kind, status_word]);
                let data = EventData::Call(Box::new(patch));
                Ok(vec![src.event_identified(
                    &identity, event_type, kind, &call_id, at, data,
                )])
            }
            Route::Report => {
                patch.provider_status = call.and_then(|c| c.status.clone());
                end_fields(&message, &mut patch, true);
                let artifact = message
                    .artifact
                    .as_ref()
                    .or(call.and_then(|c| c.artifact.as_ref()));
                patch.transcript = artifact
                    .and_then(|a| a.messages.as_ref())
                    .map(|messages| messages.iter().filter_map(turn).collect());
                patch.recording_url = artifact.and_then(recording_url);
                let at = message.timestamp.or(patch.ended_at);
                let identity = identity(&[&call_id, kind]);

                let cost = message
                    .cost
                    .clone()
                    .or_else(|| call.and_then(|c| c.cost.clone()))
                    .map(|amount| Cost {
                        amount,
                        unit: "usd".to_owned(),
                    });
                let analysis = message
                    .analysis
                    .as_ref()
                    .or(call.and_then(|c| c.analysis.as_ref()))
                    .map(analysis)
                    .filter(|a| !a.is_empty());

                let data = EventData::Call(Box::new(patch));
                let mut events = vec![src.event_identified(
                    &identity,
                    EventType::CallEnded,
                    kind,
                    &call_id,
                    at,
                    data,
                )];
                if cost.is_some() || analysis.is_some() {
                    let analyzed = CallPatch {
                        status: Some(CallStatus::Ended),
                        cost,
                        analysis,
                        ..CallPatch::default()
                    };
                    events.push(src.event_identified(
                        &identity,
                        EventType::CallAnalyzed,
                        kind,
                        &call_id,
                        at,
                        EventData::Call(Box::new(analyzed)),
                    ));
                }
                Ok(events)
            }
            Route::FinalTranscript => {
                patch.status = Some(CallStatus::InProgress);
                patch.live_turn = match (&message.role, &message.transcript) {
                    (Some(role), Some(text)) if !text.trim().is_empty() => Some(Turn {
                        at: message.timestamp,
                        ..Turn::new(role, text.as_str())
                    }),
                    _ => None,
                };
                let data = EventData::Call(Box::new(patch));
                Ok(vec![match message.timestamp {
                    Some(at) => src.event_identified(
                        &identity(&[&call_id, kind, &at.to_string()]),
                        EventType::MidCall,
                        kind,
                        &call_id,
                        Some(at),
                        data,
                    ),
                    // Without Vapi's identity, the body's digest names the delivery.
                    None => src.event(EventType::MidCall, kind, &call_id, None, data),
                }])
            }
            Route::ConversationUpdate => {
                patch.status = Some(CallStatus::InProgress);
                let data = EventData::Call(Box::new(patch));
                Ok(vec![src.event(
                    EventType::MidCall,
                    kind,
                    &call_id,
                    message.timestamp,
                    data,
                )])
            }
        }
    }
}

/// The values every interpreted message may restate: agent, direction, numbers, variables and
/// metadata.
fn common_patch(message: &Message) -> CallPatch {
    let call = message.call.as_ref();
    let direction = match call.and_then(|c| c.kind.as_deref()) {
        Some("inboundPhoneCall") => Some("inbound"),
        Some("outboundPhoneCall") => Some("outbound"),
        // Web and websocket calls have no direction and no numbers.
        _ => None,
    };
    let number = |own: Option<&Party>, of_call: Option<&Party>| {
        own.and_then(|p| p.number.clone())
            .or_else(|| of_call.and_then(|p| p.number.clone()))
    };
    let customer = number(
        message.customer.as_ref(),
        call.and_then(|c| c.customer.as_ref()),
    );
    let line = number(
        message.phone_number.as_ref(),
        call.and_then(|c| c.phone_number.as_ref()),
    );
    let (from_number, to_number) = match direction {
        Some("inbound") => (customer, line),
        Some("outbound") => (line, customer),
        _ => (None, None),
    };
    let agent = Agent {
        id: call.and_then(|c| {
            c.assistant_id
                .clone()
                .or_else(|| c.squad_id.clone())
                .or_else(|| c.workflow_id.clone())
        }),
        version: message
            .assistant_version
            .clone()
            .or_else(|| call.and_then(|c| c.assistant_version.clone())),
    };
    let overrides = call.and_then(|c| c.assistant_overrides.as_ref());
    let metadata = overrides
        .and_then(|o| o.metadata.clone())
        .or_else(|| message.assistant.as_ref().and_then(|a| a.metadata.clone()))
        .or_else(|| {
            call.and_then(|c| c.assistant.as_ref())
                .and_then(|a| a.metadata.clone())
        });
    CallPatch {
        agent: (agent.id.is_some() || agent.version.is_some()).then_some(agent),
        direction: direction.map(str::to_owned),
        from_number,
        to_number,
        dynamic_variables: overrides.and_then(|o| o.variable_values.clone()),
        metadata,
        ..CallPatch::default()
    }
}

/// The fields of an ended call, from a `status-update` ended or the end-of-call report.
///
/// The missed rule (inbound, and unanswered, failed to connect or never in progress) is the
/// record's: it holds for an inbound call whose outcome is `no_answer` or `busy`, or whose
/// duration is 0. A call that failed to connect, or whose report (the complete view) names no
/// start, therefore gets a duration of 0. A status update without a start says nothing: its
/// call object may simply be short.
fn end_fields(message: &Message, patch: &mut CallPatch, report: bool) {
    let call = message.call.as_ref();
    patch.status = Some(CallStatus::Ended);
    patch.started_at = message.started_at.or(call.and_then(|c| c.started_at));
    patch.ended_at = message.ended_at.or(call.and_then(|c| c.ended_at));
    let reason = message
        .ended_reason
        .clone()
        .or_else(|| call.and_then(|c| c.ended_reason.clone()))
        .filter(|r| !r.trim().is_empty());
    patch.outcome = reason.as_deref().map(outcome_of_reason);
    patch.duration_ms = match (patch.started_at, patch.ended_at) {
        _ if reason.as_deref().is_some_and(failed_to_connect) => Some(0),
        (Some(start), Some(end)) if end >= start => Some(end - start),
        (None, _) if report => Some(0),
        _ => None,
    };
    patch.end_reason = reason;
}

/// (rule) callhook's outcome for Vapi's `endedReason` (over 600 values and growing): the few
/// that say how the call went; any other reason is kept verbatim.
fn outcome_of_reason(reason: &str) -> String {
    let reason = reason.trim();
    match reason {
        "customer-did-not-answer" => "no_answer",
        "customer-busy" => "busy",
        "voicemail" => "voicemail",
        _ if failed_to_connect(reason) || reason.starts_with("pipeline-error-") => "failed",
        _ if reason.starts_with("customer-ended-call")
            || reason.starts_with("assistant-ended-call") =>
        {
            "completed"
        }
        _ => return reason.to_owned(),
    }
    .to_owned()
}

/// `twilio-failed-to-connect-call`, `vonage-failed-to-connect-call`, and the SIP legs'
/// `call.*.error-sip-*-call-failed-to-connect`.
fn failed_to_connect(reason: &str) -> bool {
    let reason = reason.trim();
    reason.ends_with("-failed-to-connect-call") || reason.ends_with("-failed-to-connect")
}

/// The mono recording, else the stereo one, else the deprecated flat URL.
fn recording_url(artifact: &Artifact) -> Option<String> {
    let recording = artifact.recording.as_ref();
    recording
        .and_then(|r| r.mono.as_ref())
        .and_then(|m| m.combined_url.clone())
        .or_else(|| recording.and_then(|r| r.stereo_url.clone()))
        .or_else(|| artifact.recording_url.clone())
        .filter(|url| !url.trim().is_empty())
}

/// One message of `artifact.messages` as a turn: `bot`/`assistant` → `agent`, `user`,
/// `system`, and `tool_calls`/`tool_call_result` → `tool` (a call as `name(arguments)`, a result
/// as its text).
fn turn(message: &ArtifactMessage) -> Option<Turn> {
    let role = message.role.as_deref()?;
    let role = match role.trim() {
        "tool_calls" | "tool_call_result" => "tool",
        other => other,
    };
    let spoken = message
        .message
        .as_deref()
        .filter(|text| !text.trim().is_empty());
    let content = match (spoken, &message.result, &message.tool_calls) {
        (Some(text), _, _) => text.to_owned(),
        (None, Some(result), _) if !result.is_null() => text_of(result),
        (None, _, Some(calls)) => {
            let calls: Vec<String> = calls.iter().filter_map(tool_call).collect();
            if calls.is_empty() {
                return None;
            }
            calls.join("; ")
        }
        _ => return None,
    };
    Some(Turn::new(role, content))
}

/// `{"function": {"name", "arguments"}}` as `name(arguments)`.
fn tool_call(call: &Value) -> Option<String> {
    let function = call.get("function")?;
    let name = function.get("name")?.as_str()?;
    Some(match function.get("arguments") {
        None | Some(Value::Null) => name.to_owned(),
        Some(arguments) => format!("{name}({})", text_of(arguments)),
    })
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `analysis.summary`; each key of `structuredData` and the `successEvaluation` as data items.
fn analysis(a: &AnalysisIn) -> Analysis {
    let mut data = Vec::new();
    match &a.structured_data {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            data.extend(fields.iter().map(|(name, value)| AnalysisItem {
                name: name.clone(),
                kind: json_type(value).to_owned(),
                value: value.clone(),
            }))
        }
        Some(value) => data.push(AnalysisItem {
            name: "structuredData".to_owned(),
            kind: json_type(value).to_owned(),
            value: value.clone(),
        }),
    }
    if let Some(value) = a.success_evaluation.as_ref().filter(|v| !v.is_null()) {
        data.push(AnalysisItem {
            name: "successEvaluation".to_owned(),
            kind: "evaluation".to_owned(),
            value: value.clone(),
        });
    }
    Analysis {
        summary: a.summary.clone(),
        sentiment: None,
        data,
    }
}

/// A provider identity of a delivery, unambiguous whatever its parts hold.
fn identity(parts: &[&str]) -> String {
    Value::from(parts.to_vec()).to_string()
}

/// A cost: a JSON number, or a decimal string turned into one (never through a float sum).
fn de_amount<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<Number>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<Number>()
            .map(Some)
            .map_err(|_| de::Error::custom("not an amount")),
        Some(_) => Err(de::Error::custom("not an amount")),
    }
}

fn de_call_id<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<String>, D::Error> {
    StringField("id").deserialize(de)
}

/// A string, or nothing for any other value.
fn de_loose_text<'de, D: Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// An instant, or nothing for a value that is none.
fn de_loose_time<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<i64>, D::Error> {
    Ok(value_to_ms(&Value::deserialize(de)?).ok().flatten())
}

/// Reads one string member of a JSON object and accepts any other value as naming nothing.
/// Everything else is skipped unread (a `post_call_audio`'s megabytes of base64 are never
/// copied), and no value makes it fail: events callhook does not interpret are stored, never
/// refused for fields it does not use.
#[derive(Debug, Clone, Copy)]
pub(super) struct StringField(pub &'static str);

impl<'de> DeserializeSeed<'de> for StringField {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        de: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringField {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 && found.is_none() {
                found = match map.next_value::<Value>()? {
                    Value::String(s) => Some(s),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::error::Error;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use serde_json::json;

    const IN_PROGRESS: &[u8] =
        include_bytes!("../../../tests/fixtures/vapi/status_update_in_progress.json");
    const ENDED: &[u8] = include_bytes!("../../../tests/fixtures/vapi/status_update_ended.json");
    const REPORT: &[u8] = include_bytes!("../../../tests/fixtures/vapi/end_of_call_report.json");
    const TRANSCRIPT: &[u8] = include_bytes!("../../../tests/fixtures/vapi/transcript_final.json");
    const ASSISTANT_REQUEST: &[u8] =
        include_bytes!("../../../tests/fixtures/vapi/assistant_request.json");

    const CALL: &str = "8c3f6a2e-5b1d-4e7a-9c2f-1a4b7d9e3f50";
    const ASSISTANT: &str = "5b0a4c2e-8f3d-4d1a-a6b7-2c9e8f1d0a34";
    const CUSTOMER: &str = "+14155550123";
    const LINE: &str = "+14155550199";
    /// 2026-08-14T16:02:11.482Z and 2026-08-14T16:04:37.905Z.
    const START: i64 = 1_786_723_331_482;
    const END: i64 = 1_786_723_477_905;

    fn ctx() -> DeliveryContext {
        DeliveryContext {
            received_at: 1_786_800_000_000,
            delivery_id: None,
        }
    }

    fn parse(body: &[u8]) -> Vec<CanonicalEvent> {
        let provider: &dyn Provider = &Vapi;
        provider.parse(body, &ctx()).unwrap()
    }

    fn parse_json(value: &Value) -> Vec<CanonicalEvent> {
        parse(value.to_string().as_bytes())
    }

    fn error(body: &[u8]) -> Error {
        let provider: &dyn Provider = &Vapi;
        provider.parse(body, &ctx()).unwrap_err()
    }

    fn fixture(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    /// The fixture re-serialized: other bytes, the same delivery.
    fn reserialized(body: &[u8]) -> Vec<u8> {
        serde_json::to_vec_pretty(&fixture(body)).unwrap()
    }

    fn record(events: &[CanonicalEvent]) -> CallRecord {
        CallRecord::from_events(events).unwrap()
    }

    /// An inbound end-of-call report of another call, with the given reason and start.
    fn inbound_report(reason: &str, started_at: Option<&str>) -> Value {
        let mut report = fixture(REPORT);
        report["message"]["endedReason"] = json!(reason);
        report["message"]["call"]["endedReason"] = json!(reason);
        report["message"]["call"]["type"] = json!("inboundPhoneCall");
        for pointer in ["/message", "/message/call"] {
            let holder = report.pointer_mut(pointer).unwrap();
            match started_at {
                Some(at) => holder["startedAt"] = json!(at),
                None => {
                    holder.as_object_mut().unwrap().remove("startedAt");
                }
            }
        }
        report
    }

    #[test]
    fn status_update_in_progress_starts_the_call() {
        let events = parse(IN_PROGRESS);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event_type, EventType::CallStarted);
        assert_eq!(event.provider, "vapi");
        assert_eq!(event.provider_event, "status-update");
        assert_eq!(event.call_id, CALL);
        assert_eq!(
            event.occurred_at,
            Some(1_786_723_331_509),
            "message.timestamp (ms)"
        );
        let p = patch(event);
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(p.provider_status.as_deref(), Some("in-progress"));
        assert_eq!(p.started_at, Some(START), "ISO 8601 startedAt in ms");
        assert_eq!(p.ended_at, None);
        assert_eq!(
            p.agent,
            Some(Agent {
                id: Some(ASSISTANT.into()),
                version: None
            })
        );
        // Outbound: the phone number calls the customer.
        assert_eq!(p.direction.as_deref(), Some("outbound"));
        assert_eq!(p.from_number.as_deref(), Some(LINE));
        assert_eq!(p.to_number.as_deref(), Some(CUSTOMER));
        let variables = p.dynamic_variables.as_ref().unwrap();
        assert_eq!(variables["customerName"], json!("Dana Whitfield"));
        assert_eq!(
            p.metadata.as_ref().unwrap()["campaign"],
            json!("renewals-q3")
        );
    }

    #[test]
    fn queued_and_ringing_are_call_started_and_forwarding_is_mid_call() {
        for (status, event_type, call_status) in [
            ("scheduled", EventType::CallStarted, CallStatus::Queued),
            ("queued", EventType::CallStarted, CallStatus::Queued),
            ("ringing", EventType::CallStarted, CallStatus::Ringing),
            ("forwarding", EventType::MidCall, CallStatus::InProgress),
        ] {
            let mut body = fixture(IN_PROGRESS);
            body["message"]["status"] = json!(status);
            let events = parse_json(&body);
            assert_eq!(events[0].event_type, event_type, "{status}");
            assert_eq!(patch(&events[0]).status, Some(call_status), "{status}");
            assert_eq!(patch(&events[0]).provider_status.as_deref(), Some(status));
        }
    }

    #[test]
    fn status_update_ended_ends_the_call() {
        let events = parse(ENDED);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::CallEnded);
        assert_eq!(events[0].occurred_at, Some(1_786_723_477_946));
        let p = patch(&events[0]);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.provider_status.as_deref(), Some("ended"));
        assert_eq!(p.started_at, Some(START));
        assert_eq!(p.ended_at, Some(END));
        assert_eq!(p.duration_ms, Some(END - START), "endedAt − startedAt");
        assert_eq!(p.end_reason.as_deref(), Some("customer-ended-call"));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        assert_eq!(p.transcript, None);
    }

    #[test]
    fn end_of_call_report_is_call_ended_and_call_analyzed() {
        let events = parse(REPORT);
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::CallEnded, EventType::CallAnalyzed]);
        for event in &events {
            assert_eq!(event.call_id, CALL);
            assert_eq!(event.provider_event, "end-of-call-report");
            assert_eq!(event.occurred_at, Some(1_786_723_484_217));
        }
        assert_ne!(events[0].dedupe_key, events[1].dedupe_key);

        let ended = patch(&events[0]);
        assert_eq!(ended.status, Some(CallStatus::Ended));
        assert_eq!(ended.provider_status.as_deref(), Some("ended"));
        assert_eq!((ended.started_at, ended.ended_at), (Some(START), Some(END)));
        assert_eq!(ended.duration_ms, Some(146_423));
        assert_eq!(ended.outcome.as_deref(), Some("completed"));
        assert_eq!(ended.end_reason.as_deref(), Some("customer-ended-call"));
        assert_eq!(
            ended.recording_url.as_deref(),
            Some(
                "https://storage.vapi.ai/8c3f6a2e-5b1d-4e7a-9c2f-1a4b7d9e3f50-1786723478305-3b8e1f06-mono.wav"
            ),
            "the mono combined recording"
        );
        let turns: Vec<(&str, &str)> = ended
            .transcript
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| (t.role.as_ref(), t.content.as_str()))
            .collect();
        assert_eq!(turns.len(), 7);
        assert_eq!(turns[0].0, "system");
        assert_eq!(turns[1].0, "agent", "bot → agent");
        assert_eq!(
            turns[2],
            ("user", "Yes, this is Dana. I'd like to keep the Gold plan.")
        );
        assert_eq!(turns[3], ("tool", "confirmRenewal({\"plan\":\"gold\"})"));
        assert_eq!(
            turns[4],
            (
                "tool",
                "{\"status\":\"renewed\",\"renewalId\":\"RN-204981\"}"
            )
        );
        assert!(
            ended
                .transcript
                .as_ref()
                .unwrap()
                .iter()
                .all(|t| t.at.is_none())
        );
        assert_eq!(ended.cost, None);
        assert_eq!(ended.analysis, None);

        let analyzed = patch(&events[1]);
        assert_eq!(analyzed.status, Some(CallStatus::Ended));
        let cost = analyzed.cost.as_ref().unwrap();
        assert_eq!(cost.unit, "usd");
        assert_eq!(cost.amount.to_string(), "0.1873", "the decimal as sent");
        let analysis = analyzed.analysis.as_ref().unwrap();
        assert!(
            analysis
                .summary
                .as_deref()
                .unwrap()
                .starts_with("The assistant called Dana")
        );
        assert_eq!(analysis.sentiment, None);
        let items: Vec<(&str, &str, &Value)> = analysis
            .data
            .iter()
            .map(|i| (i.name.as_str(), i.kind.as_str(), &i.value))
            .collect();
        assert_eq!(
            items,
            [
                ("preferredContactTime", "string", &json!("weekday mornings")),
                ("renewalConfirmed", "boolean", &json!(true)),
                ("successEvaluation", "evaluation", &json!("true")),
            ]
        );
    }

    #[test]
    fn final_transcript_is_one_live_turn() {
        let events = parse(TRANSCRIPT);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::MidCall);
        assert_eq!(events[0].provider_event, "transcript");
        assert_eq!(events[0].call_id, CALL);
        let p = patch(&events[0]);
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(
            p.live_turn,
            Some(Turn {
                at: Some(1_786_723_339_204),
                role: "user".into(),
                content: "Yes, this is Dana. I'd like to keep the Gold plan.".into(),
            })
        );
        assert_eq!(p.transcript, None);

        // The final-only subscription names the type differently.
        let mut body = fixture(TRANSCRIPT);
        body["message"]["type"] = json!("transcript[transcriptType=\"final\"]");
        body["message"]["role"] = json!("assistant");
        let events = parse_json(&body);
        assert_eq!(events[0].event_type, EventType::MidCall);
        assert_eq!(patch(&events[0]).live_turn.as_ref().unwrap().role, "agent");
    }

    #[test]
    fn partial_transcripts_are_stored_as_unknown() {
        let mut body = fixture(TRANSCRIPT);
        body["message"]["transcriptType"] = json!("partial");
        let events = parse_json(&body);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::Unknown);
        assert_eq!(events[0].provider_event, "transcript");
        assert_eq!(events[0].call_id, CALL);
        assert_eq!(events[0].data, EventData::Opaque);
    }

    #[test]
    fn assistant_request_is_stored_as_unknown_and_flagged() {
        let events = parse(ASSISTANT_REQUEST);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.provider_event, "assistant-request");
        assert_eq!(event.call_id, "e41b7c09-3d2a-4f5e-8b6c-9a0d1e2f3a4b");
        assert_eq!(event.occurred_at, Some(1_786_728_003_115));
        assert_eq!(event.data, EventData::Opaque);
        assert!(Vapi::expects_answer(&event.provider_event));
    }

    #[test]
    fn answer_expecting_types_are_recognised_and_informational_ones_are_not() {
        for kind in [
            "assistant-request",
            "tool-calls",
            "transfer-destination-request",
            "knowledge-base-request",
            "voice-request",
            "call.endpointing.request",
        ] {
            assert!(Vapi::expects_answer(kind), "{kind}");
            // Stored, never refused, whatever the message holds.
            let events = parse_json(&json!({"message": {"type": kind, "call": {"id": "c-1"}}}));
            assert_eq!(events[0].event_type, EventType::Unknown, "{kind}");
            assert_eq!(events[0].call_id, "c-1");
        }
        for kind in [
            "status-update",
            "end-of-call-report",
            "transcript",
            "conversation-update",
            "hang",
            "speech-update",
            "chat.created",
            "",
        ] {
            assert!(!Vapi::expects_answer(kind), "{kind}");
        }
    }

    #[test]
    fn other_types_are_unknown_whatever_their_fields_hold() {
        for message in [
            json!({"type": "hang", "call": {"id": CALL}, "timestamp": 1_786_723_400_000_i64}),
            json!({"type": "speech-update", "status": "started", "role": "assistant", "turn": 2}),
            json!({"type": "chat.created", "chat": {"id": "chat_1"}}),
            json!({"type": "session.created", "call": "not an object", "timestamp": "later"}),
            json!({"type": "model-output", "call": {"id": 42}, "output": {"x": [1, 2]}}),
            json!({"type": "status-update", "status": "not-found", "call": {"id": CALL}}),
            json!({"type": "status-update", "status": 7, "call": {"id": CALL}}),
            json!({"type": "tool-calls", "call": {"id": "   "}}),
        ] {
            let kind = message["type"].as_str().unwrap().to_owned();
            let events = parse_json(&json!({ "message": message }));
            assert_eq!(events.len(), 1, "{kind}");
            assert_eq!(events[0].event_type, EventType::Unknown, "{kind}");
            assert_eq!(events[0].provider_event, kind);
            assert_eq!(events[0].data, EventData::Opaque);
        }
        let hang = parse_json(&json!({"message": {"type": "hang", "call": {"id": CALL},
            "timestamp": 1_786_723_400_000_i64}}));
        assert_eq!(hang[0].call_id, CALL);
        assert_eq!(hang[0].occurred_at, Some(1_786_723_400_000));
        let chat = parse_json(&json!({"message": {"type": "chat.created", "chat": {"id": "x"}}}));
        assert_eq!(chat[0].call_id, "unknown", "a chat names no call");
        let blank = parse_json(&json!({"message": {"type": "tool-calls", "call": {"id": " "}}}));
        assert_eq!(blank[0].call_id, "unknown");
    }

    #[test]
    fn conversation_update_is_mid_call_without_a_transcript() {
        let body = json!({"message": {
            "type": "conversation-update",
            "timestamp": 1_786_723_350_000_i64,
            "messages": [{"role": "user", "message": "so far"}],
            "call": {"id": CALL, "type": "outboundPhoneCall", "assistantId": ASSISTANT},
            "customer": {"number": CUSTOMER},
            "phoneNumber": {"number": LINE}
        }});
        let events = parse_json(&body);
        assert_eq!(events[0].event_type, EventType::MidCall);
        let p = patch(&events[0]);
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(p.transcript, None);
        assert_eq!(p.live_turn, None);
        assert_eq!(p.to_number.as_deref(), Some(CUSTOMER));
        // Deduplicated on the body: a re-serialized delivery is another one.
        let again = parse(&serde_json::to_vec_pretty(&body).unwrap());
        assert_ne!(events[0].dedupe_key, again[0].dedupe_key);
        assert_eq!(events[0].dedupe_key, parse_json(&body)[0].dedupe_key);
    }

    #[test]
    fn dedupe_keys_follow_vapis_identity_of_each_message() {
        // GIVEN each fixture and the same delivery re-serialized (a retry whose bytes differ)
        for body in [IN_PROGRESS, ENDED, REPORT, TRANSCRIPT] {
            let first: Vec<_> = parse(body).into_iter().map(|e| e.dedupe_key).collect();
            let again: Vec<_> = parse(body).into_iter().map(|e| e.dedupe_key).collect();
            let retry: Vec<_> = parse(&reserialized(body))
                .into_iter()
                .map(|e| e.dedupe_key)
                .collect();
            // THEN the same delivery has the same keys
            assert_eq!(first, again);
            assert_eq!(first, retry);
        }
        // AND a different status, call or transcript time is another delivery
        let in_progress = &parse(IN_PROGRESS)[0].dedupe_key;
        let mut ringing = fixture(IN_PROGRESS);
        ringing["message"]["status"] = json!("ringing");
        assert_ne!(in_progress, &parse_json(&ringing)[0].dedupe_key);
        let mut other_call = fixture(IN_PROGRESS);
        other_call["message"]["call"]["id"] = json!("another-call");
        assert_ne!(in_progress, &parse_json(&other_call)[0].dedupe_key);
        let mut later = fixture(TRANSCRIPT);
        later["message"]["timestamp"] = json!(1_786_723_339_205_i64);
        assert_ne!(
            parse(TRANSCRIPT)[0].dedupe_key,
            parse_json(&later)[0].dedupe_key
        );
        // AND the report is one delivery per call, whatever its timestamp
        let mut resent = fixture(REPORT);
        resent["message"]["timestamp"] = json!(1_786_723_999_999_i64);
        assert_eq!(
            parse(REPORT)[0].dedupe_key,
            parse_json(&resent)[0].dedupe_key
        );
        // AND a sender's delivery id takes precedence
        let provider: &dyn Provider = &Vapi;
        let with_id = DeliveryContext {
            received_at: 1,
            delivery_id: Some("msg_1".into()),
        };
        let keyed = provider.parse(IN_PROGRESS, &with_id).unwrap();
        assert_ne!(keyed[0].dedupe_key, *in_progress);
    }

    #[test]
    fn a_call_merges_into_one_record() {
        let events: Vec<_> = [IN_PROGRESS, TRANSCRIPT, ENDED, REPORT, ASSISTANT_REQUEST]
            .into_iter()
            .flat_map(parse)
            .collect();
        let record = record(&events);
        assert_eq!(record.call_id, CALL);
        assert_eq!(record.status, Some(CallStatus::Ended));
        assert_eq!(record.duration_ms, Some(146_423));
        assert_eq!(
            record.transcript.len(),
            7,
            "the report's transcript replaces live turns"
        );
        assert_eq!(record.cost.as_ref().unwrap().unit, "usd");
        assert!(!record.missed);
    }

    #[test]
    fn ended_reasons_map_to_outcomes() {
        for (reason, outcome) in [
            ("customer-did-not-answer", "no_answer"),
            ("customer-busy", "busy"),
            ("voicemail", "voicemail"),
            ("twilio-failed-to-connect-call", "failed"),
            ("vonage-failed-to-connect-call", "failed"),
            (
                "call.in-progress.error-sip-outbound-call-failed-to-connect",
                "failed",
            ),
            ("pipeline-error-openai-llm-failed", "failed"),
            ("customer-ended-call", "completed"),
            ("assistant-ended-call", "completed"),
            ("assistant-ended-call-after-message-spoken", "completed"),
            ("silence-timed-out", "silence-timed-out"),
            ("hangup", "hangup"),
        ] {
            assert_eq!(outcome_of_reason(reason), outcome, "{reason}");
        }
    }

    #[test]
    fn inbound_calls_unanswered_failed_or_never_in_progress_are_missed() {
        let started = Some("2026-08-14T16:02:11.482Z");
        for (reason, started_at, missed) in [
            ("customer-did-not-answer", None, true),
            ("customer-busy", None, true),
            ("twilio-failed-to-connect-call", None, true),
            ("twilio-failed-to-connect-call", started, true),
            // Never in progress: the report names no start.
            (
                "call.ringing.sip-inbound-caller-hungup-before-call-connect",
                None,
                true,
            ),
            ("customer-ended-call", started, false),
            ("assistant-ended-call", started, false),
        ] {
            let events = parse_json(&inbound_report(reason, started_at));
            let p = patch(&events[0]);
            assert_eq!(p.direction.as_deref(), Some("inbound"));
            assert_eq!(p.from_number.as_deref(), Some(CUSTOMER), "the caller");
            assert_eq!(p.to_number.as_deref(), Some(LINE));
            assert_eq!(record(&events).missed, missed, "{reason} {started_at:?}");
        }
        // An outbound call nobody answered is not missed.
        let mut outbound = inbound_report("customer-did-not-answer", None);
        outbound["message"]["call"]["type"] = json!("outboundPhoneCall");
        let record = record(&parse_json(&outbound));
        assert_eq!(record.outcome.as_deref(), Some("no_answer"));
        assert!(!record.missed);
    }

    #[test]
    fn a_short_status_update_claims_no_duration() {
        let events = parse_json(
            &json!({"message": {"type": "status-update", "status": "ended",
            "call": {"id": "call-1", "type": "inboundPhoneCall"}}}),
        );
        let p = patch(&events[0]);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.duration_ms, None);
        assert_eq!(p.outcome, None);
        assert!(!record(&events).missed);
    }

    #[test]
    fn web_calls_have_no_direction_or_numbers_and_squads_are_agents() {
        let body = json!({"message": {"type": "status-update", "status": "in-progress",
            "assistantVersion": "v3",
            "call": {"id": "web-1", "type": "webCall", "squadId": "squad-9",
                     "customer": {"number": CUSTOMER}},
            "assistant": {"metadata": {"team": "retention"}}}});
        let p = patch(&parse_json(&body)[0]).clone();
        assert_eq!(p.direction, None);
        assert_eq!((p.from_number, p.to_number), (None, None));
        assert_eq!(
            p.agent,
            Some(Agent {
                id: Some("squad-9".into()),
                version: Some("v3".into())
            })
        );
        assert_eq!(p.metadata.unwrap()["team"], json!("retention"));
    }

    #[test]
    fn report_falls_back_to_the_call_object_and_other_recordings() {
        let mut body = fixture(REPORT);
        let message = body["message"].as_object_mut().unwrap();
        let artifact = message.remove("artifact").unwrap();
        let analysis = message.remove("analysis").unwrap();
        for key in ["cost", "startedAt", "endedAt", "endedReason"] {
            message.remove(key);
        }
        body["message"]["call"]["artifact"] = artifact;
        body["message"]["call"]["analysis"] = analysis;
        body["message"]["call"]["artifact"]["recording"]
            .as_object_mut()
            .unwrap()
            .remove("mono");
        let events = parse_json(&body);
        let ended = patch(&events[0]);
        assert_eq!((ended.started_at, ended.ended_at), (Some(START), Some(END)));
        assert_eq!(ended.outcome.as_deref(), Some("completed"));
        assert!(
            ended
                .recording_url
                .as_deref()
                .unwrap()
                .ends_with("-stereo.wav")
        );
        assert_eq!(ended.transcript.as_ref().unwrap().len(), 7);
        let analyzed = patch(&events[1]);
        assert_eq!(analyzed.cost.as_ref().unwrap().amount.to_string(), "0.1873");
        assert!(analyzed.analysis.is_some());
    }

    #[test]
    fn a_report_without_cost_or_analysis_is_call_ended_alone() {
        let mut body = fixture(REPORT);
        let message = body["message"].as_object_mut().unwrap();
        message.remove("cost");
        message.insert("analysis".into(), json!({}));
        body["message"]["call"]
            .as_object_mut()
            .unwrap()
            .remove("cost");
        let events = parse_json(&body);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::CallEnded);
    }

    #[test]
    fn a_cost_sent_as_decimal_text_stays_decimal() {
        let mut body = fixture(REPORT);
        body["message"]["cost"] = json!("0.1873");
        let events = parse_json(&body);
        assert_eq!(
            patch(&events[1]).cost.as_ref().unwrap().amount.to_string(),
            "0.1873"
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_malformed() {
        for body in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"{\"message\": {\"type\": \"hang\"",
        ] {
            assert_eq!(
                error(body).status(),
                400,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn wrong_field_types_are_unusable_and_named() {
        for (body, field) in [
            (json!({}), "message"),
            (json!({"message": "status-update"}), "message"),
            (json!({"message": {"call": {"id": CALL}}}), "message.type"),
            (json!({"message": {"type": 7}}), "message.type"),
            (
                json!({"message": {"type": "status-update", "status": "ended"}}),
                "message.call.id",
            ),
            (
                json!({"message": {"type": "status-update", "status": "ended",
                    "call": {"id": CALL, "startedAt": "yesterday"}}}),
                "message.call.startedAt",
            ),
            (
                json!({"message": {"type": "end-of-call-report",
                    "call": {"id": CALL}, "artifact": {"messages": "hello"}}}),
                "message.artifact.messages",
            ),
            (
                json!({"message": {"type": "end-of-call-report",
                    "call": {"id": CALL}, "cost": "a lot"}}),
                "message.cost",
            ),
            (
                json!({"message": {"type": "transcript", "transcriptType": "final",
                    "call": {"id": CALL}, "transcript": ["no"]}}),
                "message.transcript",
            ),
        ] {
            let err = error(body.to_string().as_bytes());
            assert_eq!(err.status(), 422, "{body}");
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn no_prefix_of_a_delivery_panics() {
        let provider: &dyn Provider = &Vapi;
        for body in [IN_PROGRESS, ENDED, REPORT, TRANSCRIPT, ASSISTANT_REQUEST] {
            for end in (0..body.len()).step_by(13) {
                let _ = provider.parse(&body[..end], &ctx());
            }
        }
    }
}
