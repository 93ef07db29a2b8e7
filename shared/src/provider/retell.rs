//! Retell call webhooks: `{event, call}`, where `call` has the shape of Retell's get-call response.
//!
//! The lifecycle comes from `event`, never from `call_status` (Retell's own `call_ended` sample says
//! `registered`). `call_started`, `call_ended` and `call_analyzed` are deduplicated on the call and
//! the event, since Retell re-signs its retries; `transcript_updated` and the `transfer_*` events,
//! each one moment of the call, on their body. Instants are unix ms, `duration_ms` is ms and
//! `call_cost.combined_cost` is in cents, kept as sent. `transcript_updated` repeats the whole
//! conversation so far: its last spoken utterance is the event's live turn. `chat_*` and any other
//! event are stored as `unknown`, filed under the call or chat they name.

use super::vox::json_type;
use super::{AuthDefaults, Provider, Source, from_json, required_id};
use crate::error::{Error, Result};
use crate::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, Cost, DeliveryContext,
    EventData, EventType, Turn,
};
use crate::timefmt::{de_millis, seconds_to_ms};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct Retell;

const NAME: &str = "retell";

/// What every delivery is first read for: the event decides how the rest is read.
#[derive(Debug, Deserialize)]
struct Envelope {
    event: String,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    call: Option<Call>,
}

/// An event callhook does not interpret: only the id it is filed under is read, leniently.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Loose {
    call: Option<Value>,
    chat: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Call {
    call_id: Option<String>,
    call_type: Option<String>,
    agent_id: Option<String>,
    agent_version: Option<Value>,
    direction: Option<String>,
    from_number: Option<String>,
    to_number: Option<String>,
    call_status: Option<String>,
    #[serde(deserialize_with = "de_millis")]
    start_timestamp: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    end_timestamp: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    duration_ms: Option<i64>,
    disconnection_reason: Option<String>,
    transcript_object: Option<Vec<Utterance>>,
    transcript_with_tool_calls: Option<Vec<Utterance>>,
    recording_url: Option<String>,
    call_cost: Option<CostIn>,
    call_analysis: Option<AnalysisIn>,
    retell_llm_dynamic_variables: Option<Map<String, Value>>,
    collected_dynamic_variables: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    opt_out_sensitive_data_storage: Option<bool>,
    data_storage_setting: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Utterance {
    role: Option<String>,
    content: Option<String>,
    /// Tool-call invocations of `transcript_with_tool_calls` name a tool instead of speaking.
    name: Option<String>,
    arguments: Option<Value>,
    words: Option<Vec<Word>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Word {
    /// Seconds from the start of the call.
    start: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CostIn {
    #[serde(deserialize_with = "de_amount")]
    combined_cost: Option<Number>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AnalysisIn {
    call_summary: Option<String>,
    user_sentiment: Option<String>,
    custom_analysis_data: Option<Value>,
    call_successful: Option<bool>,
    in_voicemail: Option<bool>,
}

impl Provider for Retell {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        // `x-retell-signature: v=<ms>,d=<hex>`, the HMAC of the body followed by the ms.
        AuthDefaults {
            scheme: "retell",
            header: "x-retell-signature",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let Envelope { event } = from_json(body)?;
        let Some(event_type) = event_type(&event) else {
            return unknown(&src, &event, body).map(|e| vec![e]);
        };
        let Payload { call } = from_json(body)?;
        let call = call.ok_or_else(|| Error::unusable("The required field `call` is missing."))?;
        let call_id = required_id(call.call_id.clone(), "call.call_id")?;

        let mut patch = common_patch(&call);
        let canonical = match event_type {
            EventType::CallStarted => {
                patch.status = Some(CallStatus::InProgress);
                let data = EventData::Call(Box::new(patch));
                src.event_identified(
                    &event,
                    event_type,
                    &event,
                    &call_id,
                    call.start_timestamp,
                    data,
                )
            }
            EventType::MidCall => {
                // A mid-call event means the call is connected, whatever `call_status` says (the
                // final `transcript_updated` comes after the end): only `call_ended` ends a call.
                patch.status = Some(CallStatus::InProgress);
                if event == "transcript_updated" {
                    patch.live_turn = live_turn(&call, ctx.received_at);
                }
                let at = patch.live_turn.as_ref().and_then(|t| t.at);
                let data = EventData::Call(Box::new(patch));
                src.event(event_type, &event, &call_id, at, data)
            }
            _ => {
                end_fields(&call, &mut patch);
                if event_type == EventType::CallAnalyzed {
                    let analysis = call.call_analysis.as_ref();
                    if analysis.and_then(|a| a.in_voicemail) == Some(true) {
                        patch.outcome = Some("voicemail".to_owned());
                    }
                    patch.analysis = Some(analysis_of(&call)).filter(|a| !a.is_empty());
                }
                let data = EventData::Call(Box::new(patch));
                src.event_identified(
                    &event,
                    event_type,
                    &event,
                    &call_id,
                    call.end_timestamp,
                    data,
                )
            }
        };
        Ok(vec![canonical])
    }
}

fn event_type(event: &str) -> Option<EventType> {
    Some(match event {
        "call_started" => EventType::CallStarted,
        "call_ended" => EventType::CallEnded,
        "call_analyzed" => EventType::CallAnalyzed,
        "transcript_updated" | "transfer_started" | "transfer_bridged" | "transfer_cancelled"
        | "transfer_ended" => EventType::MidCall,
        _ => return None,
    })
}

/// A `chat_*` or new event: kept under the call (or chat) it names, else under `unknown`.
fn unknown(src: &Source<'_>, event: &str, body: &[u8]) -> Result<CanonicalEvent> {
    let Loose { call, chat } = from_json(body)?;
    let id = |value: Option<Value>, key: &str| {
        value?
            .get(key)
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .map(str::to_owned)
    };
    let call_id = id(call, "call_id")
        .or_else(|| id(chat, "chat_id"))
        .unwrap_or_else(|| "unknown".into());
    Ok(src.event(EventType::Unknown, event, &call_id, None, EventData::Opaque))
}

/// Fields every call event may carry.
fn common_patch(call: &Call) -> CallPatch {
    let web = call.call_type.as_deref() == Some("web_call");
    CallPatch {
        agent: Some(Agent {
            id: call.agent_id.clone(),
            version: version_text(call.agent_version.as_ref()),
        }),
        direction: call.direction.clone().filter(|_| !web),
        from_number: call.from_number.clone(),
        to_number: call.to_number.clone(),
        provider_status: call.call_status.clone(),
        started_at: call.start_timestamp,
        dynamic_variables: call.retell_llm_dynamic_variables.clone(),
        metadata: call.metadata.clone(),
        sensitive_data_opt_out: opt_out(call),
        ..CallPatch::default()
    }
}

/// Fields of `call_ended` and `call_analyzed`.
fn end_fields(call: &Call, patch: &mut CallPatch) {
    patch.status = Some(CallStatus::Ended);
    patch.ended_at = call.end_timestamp;
    // A call that never connected (Retell sends no `call_started` for it) talked for 0 ms: said
    // when Retell states no duration, so that an inbound one is a missed call.
    patch.duration_ms = call
        .duration_ms
        .or_else(|| never_connected(call).then_some(0));
    patch.end_reason = call.disconnection_reason.clone();
    patch.outcome = call.disconnection_reason.as_deref().map(outcome);
    patch.recording_url = call.recording_url.clone();
    patch.transcript = transcript(call);
    patch.cost = call
        .call_cost
        .as_ref()
        .and_then(|c| c.combined_cost.clone())
        .map(|amount| Cost {
            amount,
            unit: "cents".to_owned(),
        });
}

/// callhook's outcome of a `disconnection_reason` (docs/PROVIDERS.md's rule): any other reason is kept
/// verbatim.
fn outcome(reason: &str) -> String {
    let reason = reason.trim();
    match reason {
        "dial_no_answer" => "no_answer",
        "dial_busy" => "busy",
        "voicemail_reached" => "voicemail",
        "dial_failed" | "invalid_destination" => "failed",
        _ if reason.starts_with("error_") => "failed",
        "user_hangup" | "agent_hangup" | "call_transfer" => "completed",
        _ => reason,
    }
    .to_owned()
}

fn never_connected(call: &Call) -> bool {
    call.call_status.as_deref() == Some("not_connected")
        || matches!(
            call.disconnection_reason.as_deref(),
            Some("dial_no_answer" | "dial_busy" | "dial_failed")
        )
}

/// `opt_out_sensitive_data_storage`, or the newer `data_storage_setting`: anything but
/// `everything` keeps sensitive data out of Retell's storage, so the call opts out. Either one
/// saying so is enough.
fn opt_out(call: &Call) -> Option<bool> {
    let setting = call
        .data_storage_setting
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s != "everything");
    match (call.opt_out_sensitive_data_storage, setting) {
        (None, None) => None,
        (flag, setting) => Some(flag == Some(true) || setting == Some(true)),
    }
}

/// The full transcript: `transcript_object` (agent, user, transfer_target), else the spoken and
/// tool turns of `transcript_with_tool_calls`.
fn transcript(call: &Call) -> Option<Vec<Turn>> {
    let utterances = call
        .transcript_object
        .as_ref()
        .filter(|t| !t.is_empty())
        .or(call.transcript_with_tool_calls.as_ref())?;
    Some(utterances.iter().filter_map(turn).collect())
}

fn turn(u: &Utterance) -> Option<Turn> {
    let role = u.role.as_deref()?;
    let content = match (&u.content, &u.name) {
        (Some(content), _) => content.clone(),
        (None, Some(name)) => match &u.arguments {
            Some(args) if !args.is_null() => match args.as_str() {
                Some(text) => format!("{name}({text})"),
                None => format!("{name}({args})"),
            },
            _ => name.clone(),
        },
        (None, None) => return None,
    };
    Some(Turn::new(role, content))
}

/// The newest spoken utterance of a `transcript_updated`, timed by its first word (the call's
/// start plus the word's offset), else by its receipt.
fn live_turn(call: &Call, received_at: i64) -> Option<Turn> {
    let utterances = call
        .transcript_with_tool_calls
        .as_ref()
        .filter(|t| !t.is_empty())
        .or(call.transcript_object.as_ref())?;
    let spoken = utterances.iter().rev().find(|u| {
        matches!(
            u.role.as_deref(),
            Some("agent" | "user" | "transfer_target")
        ) && u.content.as_deref().is_some_and(|c| !c.trim().is_empty())
    })?;
    let mut turn = turn(spoken)?;
    let offset = spoken
        .words
        .as_ref()
        .and_then(|words| words.first())
        .and_then(|word| word.start)
        .and_then(seconds_to_ms);
    turn.at = call
        .start_timestamp
        .zip(offset)
        .and_then(|(start, offset)| start.checked_add(offset))
        .or(Some(received_at));
    Some(turn)
}

/// `call_analysis` (summary, sentiment, and as data its custom data, `call_successful` and
/// `in_voicemail`) and the dynamic variables the call collected.
fn analysis_of(call: &Call) -> Analysis {
    let analysis = call.call_analysis.as_ref();
    let mut data = Vec::new();
    if let Some(a) = analysis {
        match &a.custom_analysis_data {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                data.extend(fields.iter().map(|(name, value)| item(name, value.clone())));
            }
            Some(other) => data.push(item("custom_analysis_data", other.clone())),
        }
        if let Some(successful) = a.call_successful {
            data.push(item("call_successful", Value::Bool(successful)));
        }
        if let Some(in_voicemail) = a.in_voicemail {
            data.push(item("in_voicemail", Value::Bool(in_voicemail)));
        }
    }
    if let Some(collected) = call
        .collected_dynamic_variables
        .as_ref()
        .filter(|m| !m.is_empty())
    {
        data.push(item(
            "collected_dynamic_variables",
            Value::Object(collected.clone()),
        ));
    }
    Analysis {
        summary: analysis.and_then(|a| a.call_summary.clone()),
        sentiment: analysis.and_then(|a| a.user_sentiment.clone()),
        data,
    }
}

pub(super) fn item(name: &str, value: Value) -> AnalysisItem {
    AnalysisItem {
        name: name.to_owned(),
        kind: json_type(&value).to_owned(),
        value,
    }
}

fn version_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A money amount as the provider states it: a JSON number, or a string holding one. It is kept
/// as a [`Number`] and never computed with: serde_json reads a decimal as the nearest `f64`, whose
/// shortest text is the decimal sent.
pub(super) fn de_amount<'de, D: Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<Number>, D::Error> {
    let not_an_amount = || serde::de::Error::custom("not an amount");
    match Value::deserialize(de)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n)),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<Number>()
            .map(Some)
            .map_err(|_| not_an_amount()),
        _ => Err(not_an_amount()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use serde_json::json;

    const CALL_STARTED: &[u8] = include_bytes!("../../../tests/fixtures/retell/call_started.json");
    const TRANSCRIPT_UPDATED: &[u8] =
        include_bytes!("../../../tests/fixtures/retell/transcript_updated.json");
    const TRANSFER_STARTED: &[u8] =
        include_bytes!("../../../tests/fixtures/retell/transfer_started.json");
    const CALL_ENDED: &[u8] = include_bytes!("../../../tests/fixtures/retell/call_ended.json");
    const CALL_ANALYZED: &[u8] =
        include_bytes!("../../../tests/fixtures/retell/call_analyzed.json");
    const CHAT_ENDED: &[u8] = include_bytes!("../../../tests/fixtures/retell/chat_ended.json");

    const CALL: &str = "call_5d2a8f0c3b7e41a9c6d4e2f1a8b3c790";
    const AGENT: &str = "agent_3f9c2b7d1e8a4c6f0b5d2e9a71";
    const START: i64 = 1_780_308_061_204;
    const END: i64 = 1_780_308_156_634;

    fn ctx(received_at: i64) -> DeliveryContext {
        DeliveryContext {
            received_at,
            delivery_id: None,
        }
    }

    fn parse(body: &[u8]) -> Vec<CanonicalEvent> {
        parse_at(body, 1_780_400_000_000)
    }

    fn parse_at(body: &[u8], received_at: i64) -> Vec<CanonicalEvent> {
        let provider: &dyn Provider = &Retell;
        provider.parse(body, &ctx(received_at)).unwrap()
    }

    fn error(body: &[u8]) -> Error {
        let provider: &dyn Provider = &Retell;
        provider.parse(body, &ctx(1)).unwrap_err()
    }

    fn one(body: &[u8]) -> CanonicalEvent {
        let mut events = parse(body);
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn pairs(turns: &[Turn]) -> Vec<(&str, &str)> {
        turns
            .iter()
            .map(|t| (t.role.as_ref(), t.content.as_str()))
            .collect()
    }

    #[test]
    fn call_started() {
        let e = one(CALL_STARTED);
        assert_eq!(
            (e.provider, e.event_type, e.call_id.as_str()),
            ("retell", EventType::CallStarted, CALL)
        );
        assert_eq!(e.provider_event, "call_started");
        assert_eq!(e.occurred_at, Some(START));
        let p = patch(&e);
        let agent = p.agent.as_ref().unwrap();
        assert_eq!(agent.id.as_deref(), Some(AGENT));
        assert_eq!(agent.version.as_deref(), Some("4"), "a number, as text");
        assert_eq!(p.direction.as_deref(), Some("inbound"));
        assert_eq!(p.from_number.as_deref(), Some("+14155550123"));
        assert_eq!(p.to_number.as_deref(), Some("+14155550188"));
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(p.provider_status.as_deref(), Some("ongoing"));
        assert_eq!(p.started_at, Some(START));
        assert_eq!(
            Value::Object(p.dynamic_variables.clone().unwrap()),
            json!({"customer_name": "Dana Whitfield"})
        );
        assert_eq!(
            Value::Object(p.metadata.clone().unwrap()),
            json!({"clinic_id": "sf-mission", "crm_contact_id": "cn_20417"})
        );
        assert_eq!(p.sensitive_data_opt_out, Some(false));
        assert_eq!((p.ended_at, p.transcript.as_ref()), (None, None));
    }

    #[test]
    fn transcript_updated_is_a_live_turn_timed_by_its_first_word() {
        let e = one(TRANSCRIPT_UPDATED);
        assert_eq!(
            (e.event_type, e.provider_event.as_str()),
            (EventType::MidCall, "transcript_updated")
        );
        let p = patch(&e);
        // The tool call after it is not a spoken turn.
        let turn = p.live_turn.as_ref().unwrap();
        assert_eq!(turn.role, "user");
        assert_eq!(
            turn.content,
            "Hi, I need to move my cleaning on Thursday to next week."
        );
        assert_eq!(turn.at, Some(START + 5_840), "start + 5.84 s");
        assert_eq!(e.occurred_at, turn.at);
        assert_eq!(
            p.transcript, None,
            "live turns never set the full transcript"
        );
        assert_eq!(p.status, Some(CallStatus::InProgress));
    }

    #[test]
    fn a_live_turn_without_word_times_is_timed_by_its_receipt() {
        let body = br#"{"event":"transcript_updated","call":{"call_id":"c","call_status":"ended",
            "transcript_with_tool_calls":[{"role":"agent","content":"Bye."}]}}"#;
        let e = parse_at(body, 77).remove(0);
        let p = patch(&e);
        assert_eq!(p.live_turn.as_ref().unwrap().at, Some(77));
        assert_eq!(
            p.status,
            Some(CallStatus::InProgress),
            "only call_ended ends a call"
        );
        assert_eq!(p.provider_status.as_deref(), Some("ended"));
    }

    #[test]
    fn transfer_started_is_mid_call_without_turns() {
        let e = one(TRANSFER_STARTED);
        assert_eq!(
            (e.event_type, e.provider_event.as_str(), e.call_id.as_str()),
            (EventType::MidCall, "transfer_started", CALL)
        );
        let p = patch(&e);
        assert_eq!((p.live_turn.as_ref(), p.transcript.as_ref()), (None, None));
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(e.occurred_at, None);
    }

    #[test]
    fn call_ended() {
        let e = one(CALL_ENDED);
        assert_eq!(
            (e.event_type, e.call_id.as_str()),
            (EventType::CallEnded, CALL)
        );
        assert_eq!(e.occurred_at, Some(END));
        let p = patch(&e);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.provider_status.as_deref(), Some("ended"));
        assert_eq!((p.started_at, p.ended_at), (Some(START), Some(END)));
        assert_eq!(p.duration_ms, Some(95_430));
        assert_eq!(p.end_reason.as_deref(), Some("call_transfer"));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        let turns = p.transcript.as_ref().unwrap();
        assert_eq!(
            pairs(turns),
            [
                (
                    "agent",
                    "Thanks for calling Mission Dental, this is Ava. How can I help you today?"
                ),
                (
                    "user",
                    "Hi, I need to move my cleaning on Thursday to next week."
                ),
                (
                    "agent",
                    "Sure, Dana. I have Tuesday at 10 AM or Wednesday at 2 PM. Which works better?"
                ),
                (
                    "user",
                    "Tuesday at 10. And can I ask someone about my bill?"
                ),
                (
                    "agent",
                    "You're booked for Tuesday at 10 AM. I'll transfer you to our front desk now."
                ),
            ],
            "transcript_object, not the tool calls"
        );
        assert!(turns.iter().all(|t| t.at.is_none()));
        assert_eq!(
            p.recording_url.as_deref(),
            Some(
                "https://dxc03zgurdly9.cloudfront.net/call_5d2a8f0c3b7e41a9c6d4e2f1a8b3c790/recording.wav"
            )
        );
        let cost = p.cost.as_ref().unwrap();
        assert_eq!(
            (cost.amount.to_string().as_str(), cost.unit.as_str()),
            ("11.2", "cents"),
            "the decimal as sent"
        );
        assert_eq!(p.analysis, None, "call_ended carries no call_analysis");
    }

    #[test]
    fn call_analyzed() {
        let e = one(CALL_ANALYZED);
        assert_eq!(
            (e.event_type, e.call_id.as_str()),
            (EventType::CallAnalyzed, CALL)
        );
        assert_eq!(e.occurred_at, Some(END));
        let p = patch(&e);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        assert_eq!(p.transcript.as_ref().unwrap().len(), 5);
        let analysis = p.analysis.as_ref().unwrap();
        assert_eq!(
            analysis.summary.as_deref(),
            Some(
                "Dana moved her Thursday cleaning to Tuesday at 10 AM and was transferred to the front desk with a billing question."
            )
        );
        assert_eq!(analysis.sentiment.as_deref(), Some("Positive"));
        assert_eq!(
            serde_json::to_value(&analysis.data).unwrap(),
            json!([
                {"name": "appointment_rescheduled", "type": "boolean", "value": true},
                {"name": "new_appointment", "type": "string", "value": "Tuesday 10:00"},
                {"name": "call_successful", "type": "boolean", "value": true},
                {"name": "in_voicemail", "type": "boolean", "value": false},
                {"name": "collected_dynamic_variables", "type": "object",
                 "value": {"appointment_day": "Tuesday"}}
            ])
        );
        assert_eq!(p.cost.as_ref().unwrap().unit, "cents");
    }

    #[test]
    fn chat_events_are_unknown_and_filed_under_their_chat() {
        let e = one(CHAT_ENDED);
        assert_eq!(
            (e.event_type, e.provider_event.as_str(), e.call_id.as_str()),
            (
                EventType::Unknown,
                "chat_ended",
                "chat_9a4e1c7b2d8f3a6e5c0b"
            )
        );
        assert_eq!(e.data, EventData::Opaque);
        for body in [
            br#"{"event":"agent_moved","call":{"call_id":"c1","duration_ms":"soon"}}"#.as_slice(),
            br#"{"event":"new_thing","call":"text","chat":7}"#,
            br#"{"event":"new_thing","call":{"call_id":"   "}}"#,
        ] {
            let e = one(body);
            assert_eq!(e.event_type, EventType::Unknown, "never an error");
            assert!(["c1", "unknown"].contains(&e.call_id.as_str()));
        }
    }

    #[test]
    fn lifecycle_events_dedupe_on_call_and_event_the_others_on_their_body() {
        // The same delivery again, later: the same key.
        for body in [
            CALL_STARTED,
            TRANSCRIPT_UPDATED,
            TRANSFER_STARTED,
            CALL_ENDED,
            CALL_ANALYZED,
            CHAT_ENDED,
        ] {
            assert_eq!(
                parse_at(body, 1)[0].dedupe_key,
                parse_at(body, 2)[0].dedupe_key
            );
        }
        // A retry re-serialized differently: the same call_started/ended/analyzed…
        let reserialized = |body: &[u8]| {
            let value: Value = serde_json::from_slice(body).unwrap();
            serde_json::to_vec(&value).unwrap()
        };
        for body in [CALL_STARTED, CALL_ENDED, CALL_ANALYZED] {
            assert_ne!(reserialized(body), body);
            assert_eq!(one(body).dedupe_key, one(&reserialized(body)).dedupe_key);
        }
        // …but a different moment of the call for the body-keyed ones.
        for body in [TRANSCRIPT_UPDATED, TRANSFER_STARTED, CHAT_ENDED] {
            assert_ne!(one(body).dedupe_key, one(&reserialized(body)).dedupe_key);
        }
        let keys: std::collections::BTreeSet<_> = [
            CALL_STARTED,
            TRANSCRIPT_UPDATED,
            TRANSFER_STARTED,
            CALL_ENDED,
            CALL_ANALYZED,
        ]
        .map(|b| one(b).dedupe_key)
        .into_iter()
        .collect();
        assert_eq!(keys.len(), 5);
    }

    fn merged(bodies: &[&[u8]]) -> CallRecord {
        let events: Vec<_> = bodies
            .iter()
            .enumerate()
            .flat_map(|(i, body)| parse_at(body, 1_780_400_000_000 + i as i64))
            .collect();
        CallRecord::from_events(&events).unwrap()
    }

    #[test]
    fn the_fixtures_merge_into_one_record_in_any_order() {
        let bodies = [
            CALL_STARTED,
            TRANSCRIPT_UPDATED,
            TRANSFER_STARTED,
            CALL_ENDED,
            CALL_ANALYZED,
        ];
        let record = merged(&bodies);
        assert_eq!(record.status, Some(CallStatus::Ended));
        assert_eq!(record.provider_status.as_deref(), Some("ended"));
        assert_eq!(
            record.transcript.len(),
            5,
            "the full transcript replaced the live turn"
        );
        assert_eq!(record.duration_ms, Some(95_430));
        assert_eq!(record.cost.as_ref().unwrap().amount.to_string(), "11.2");
        assert!(record.analysis.is_some());
        assert!(!record.missed);
        assert_eq!(
            record.events,
            [
                EventType::CallStarted,
                EventType::MidCall,
                EventType::CallEnded,
                EventType::CallAnalyzed
            ]
        );
        let mut reversed = bodies;
        reversed.reverse();
        let mut backward = merged(&reversed);
        backward.first_event_at = record.first_event_at;
        backward.last_event_at = record.last_event_at;
        assert_eq!(backward, record);
    }

    fn ended(fields: &str) -> CallPatch {
        let body = format!(r#"{{"event":"call_ended","call":{{"call_id":"c",{fields}}}}}"#);
        patch(&one(body.as_bytes())).clone()
    }

    #[test]
    fn disconnection_reasons_become_outcomes() {
        for (reason, expected) in [
            ("dial_no_answer", "no_answer"),
            ("dial_busy", "busy"),
            ("voicemail_reached", "voicemail"),
            ("dial_failed", "failed"),
            ("invalid_destination", "failed"),
            ("error_llm_websocket_open", "failed"),
            ("error_unknown", "failed"),
            ("user_hangup", "completed"),
            ("agent_hangup", "completed"),
            ("call_transfer", "completed"),
            ("inactivity", "inactivity"),
            ("max_duration_reached", "max_duration_reached"),
        ] {
            let p = ended(&format!(r#""disconnection_reason":"{reason}""#));
            assert_eq!(p.outcome.as_deref(), Some(expected), "{reason}");
            assert_eq!(p.end_reason.as_deref(), Some(reason));
        }
        let body = br#"{"event":"call_analyzed","call":{"call_id":"c","disconnection_reason":"agent_hangup","call_analysis":{"in_voicemail":true}}}"#;
        assert_eq!(patch(&one(body)).outcome.as_deref(), Some("voicemail"));
    }

    #[test]
    fn an_inbound_call_that_never_connected_is_missed() {
        let record = |fields: &str| {
            let body = format!(r#"{{"event":"call_ended","call":{{"call_id":"c",{fields}}}}}"#);
            CallRecord::from_events(&parse(body.as_bytes())).unwrap()
        };
        let no_answer = record(
            r#""direction":"inbound","disconnection_reason":"dial_no_answer","start_timestamp":1780308061204,"end_timestamp":1780308081204"#,
        );
        assert!(no_answer.missed);
        assert_eq!(no_answer.outcome.as_deref(), Some("no_answer"));
        assert_eq!(no_answer.duration_ms, Some(0), "never connected: 0 ms");
        let not_connected = record(
            r#""direction":"inbound","call_status":"not_connected","disconnection_reason":"dial_failed""#,
        );
        assert!(not_connected.missed, "no call_started: never connected");
        let busy =
            record(r#""direction":"inbound","disconnection_reason":"dial_busy","duration_ms":0"#);
        assert!(busy.missed);
        let outbound = record(r#""direction":"outbound","disconnection_reason":"dial_no_answer""#);
        assert!(!outbound.missed, "only inbound calls are missed");
        let answered = record(
            r#""direction":"inbound","disconnection_reason":"user_hangup","duration_ms":4100"#,
        );
        assert!(!answered.missed);
        let stated = ended(r#""disconnection_reason":"dial_no_answer","duration_ms":1200"#);
        assert_eq!(stated.duration_ms, Some(1200), "Retell's own value wins");
    }

    #[test]
    fn web_calls_have_no_direction() {
        let p = ended(r#""call_type":"web_call","direction":"inbound""#);
        assert_eq!(p.direction, None);
    }

    #[test]
    fn either_opt_out_field_opts_out() {
        for (fields, expected) in [
            (r#""opt_out_sensitive_data_storage":true"#, Some(true)),
            (r#""opt_out_sensitive_data_storage":false"#, Some(false)),
            (r#""data_storage_setting":"everything""#, Some(false)),
            (
                r#""data_storage_setting":"everything_except_pii""#,
                Some(true),
            ),
            (
                r#""data_storage_setting":"basic_attributes_only""#,
                Some(true),
            ),
            (
                r#""opt_out_sensitive_data_storage":false,"data_storage_setting":"basic_attributes_only""#,
                Some(true),
            ),
            (r#""data_storage_setting":null"#, None),
            (r#""agent_id":"a""#, None),
        ] {
            assert_eq!(ended(fields).sensitive_data_opt_out, expected, "{fields}");
        }
    }

    #[test]
    fn costs_are_kept_as_sent() {
        let cost = |fields: &str| ended(fields).cost.map(|c| c.amount.to_string());
        assert_eq!(
            cost(r#""call_cost":{"combined_cost":70}"#).as_deref(),
            Some("70")
        );
        assert_eq!(
            cost(r#""call_cost":{"combined_cost":"12.75"}"#).as_deref(),
            Some("12.75"),
            "a numeric string is read as the number it holds"
        );
        assert_eq!(cost(r#""call_cost":{"product_costs":[]}"#), None);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_right_class() {
        for body in [
            b"".as_slice(),
            b"not json",
            b"[1,2]",
            br#"{"event":"call_ended","call":{"#,
        ] {
            assert_eq!(
                error(body).status(),
                400,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for (body, field) in [
            (r#"{"call":{"call_id":"c"}}"#, "event"),
            (r#"{"event":7,"call":{"call_id":"c"}}"#, "event"),
            (r#"{"event":"call_ended"}"#, "call"),
            (r#"{"event":"call_ended","call":null}"#, "call"),
            (r#"{"event":"call_ended","call":"c"}"#, "call"),
            (
                r#"{"event":"call_ended","call":{"duration_ms":5}}"#,
                "call.call_id",
            ),
            (
                r#"{"event":"call_started","call":{"call_id":"  "}}"#,
                "call.call_id",
            ),
            (
                r#"{"event":"call_ended","call":{"call_id":"c","duration_ms":"95430"}}"#,
                "call.duration_ms",
            ),
            (
                r#"{"event":"call_ended","call":{"call_id":"c","start_timestamp":-1}}"#,
                "call.start_timestamp",
            ),
            (
                r#"{"event":"call_ended","call":{"call_id":"c","call_cost":{"combined_cost":true}}}"#,
                "call.call_cost.combined_cost",
            ),
            (
                r#"{"event":"call_ended","call":{"call_id":"c","call_cost":{"combined_cost":"cheap"}}}"#,
                "call.call_cost.combined_cost",
            ),
            (
                r#"{"event":"call_ended","call":{"call_id":"c","transcript_object":{"role":"agent"}}}"#,
                "call.transcript_object",
            ),
            (
                r#"{"event":"call_analyzed","call":{"call_id":"c","call_analysis":{"call_successful":"yes"}}}"#,
                "call.call_analysis.call_successful",
            ),
            (
                r#"{"event":"call_started","call":{"call_id":"c","metadata":[1]}}"#,
                "call.metadata",
            ),
        ] {
            let error = error(body.as_bytes());
            assert_eq!(error.status(), 422, "{body}");
            assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
        }
    }
}
