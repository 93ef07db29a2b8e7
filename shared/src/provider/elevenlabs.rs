//! ElevenLabs Agents post-call webhooks: `{"type", "event_timestamp", "data"}`.
//!
//! `post_call_transcription` carries the conversation as the GET conversation API returns it and
//! yields `call_ended` (lifecycle, numbers, transcript, variables, metadata) + `call_analyzed`
//! (cost, analysis). `call_initiation_failure` is a call that never connected: `call_ended`,
//! with a duration of 0 so that the record's missed rule sees it (an inbound one is missed).
//! `post_call_audio` is the whole call as base64 MP3, megabytes of it: ingest refuses it before
//! parsing, and a parser handed one anyway stores it as `unknown` without reading its audio.
//! Any other type is stored as `unknown`, never refused.
//!
//! Instants are unix **seconds**, durations seconds; the cost is an integer of ElevenLabs credits
//! (docs/PROVIDERS.md §5: [UNCONFIRMED]), kept as the JSON number sent, and the fiat cost goes into
//! the metadata. Deliveries are deduplicated on `(conversation_id, type)`: ElevenLabs sends no
//! delivery id, and with its opt-in retries a retry is the same event.

use super::vapi::StringField;
use super::vox::json_type;
use super::{AuthDefaults, Provider, Source, from_json, outcome_of, required_id};
use crate::error::{Error, Result};
use crate::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, Cost, DeliveryContext,
    EventData, EventType, Turn,
};
use crate::timefmt::{de_seconds_as_ms, seconds_to_ms, value_to_ms};
use serde::de::{self, DeserializeSeed};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default)]
pub struct ElevenLabs;

const NAME: &str = "elevenlabs";

/// The latest instant callhook accepts (year 9999), in ms.
const MAX_MS: i64 = 253_402_300_799_999;

/// What every delivery is read for first, leniently. `data` is skipped but for its
/// conversation id, so an audio delivery's `full_audio` is never copied.
#[derive(Debug, Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "de_loose_secs")]
    event_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_conversation_id")]
    data: Option<String>,
}

/// The types callhook interprets, read strictly: a field of the wrong type is refused (422).
#[derive(Debug, Deserialize)]
struct Payload<T> {
    #[serde(default, deserialize_with = "de_unix_secs")]
    event_timestamp: Option<i64>,
    data: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Conversation {
    agent_id: Option<String>,
    version_id: Option<String>,
    conversation_id: Option<String>,
    status: Option<String>,
    user_id: Option<String>,
    transcript: Option<Vec<TurnIn>>,
    metadata: Option<Metadata>,
    analysis: Option<AnalysisIn>,
    conversation_initiation_client_data: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    #[serde(deserialize_with = "de_unix_secs")]
    start_time_unix_secs: Option<i64>,
    #[serde(deserialize_with = "de_seconds_as_ms")]
    call_duration_secs: Option<i64>,
    cost: Option<Number>,
    cost_fiat: Option<Number>,
    phone_call: Option<PhoneCall>,
    termination_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PhoneCall {
    direction: Option<String>,
    agent_number: Option<String>,
    external_number: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TurnIn {
    role: Option<String>,
    /// Null on a turn that only calls a tool or returns its result.
    message: Option<String>,
    tool_calls: Option<Vec<ToolCallIn>>,
    tool_results: Option<Vec<ToolResultIn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ToolCallIn {
    tool_name: Option<String>,
    params_as_json: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ToolResultIn {
    result_value: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AnalysisIn {
    transcript_summary: Option<String>,
    call_successful: Option<Value>,
    data_collection_results: Option<BTreeMap<String, DataCollectionIn>>,
    data_collection_results_list: Option<Vec<DataCollectionIn>>,
    evaluation_criteria_results: Option<BTreeMap<String, EvaluationIn>>,
    evaluation_criteria_results_list: Option<Vec<EvaluationIn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DataCollectionIn {
    data_collection_id: Option<String>,
    value: Value,
    json_schema: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EvaluationIn {
    criteria_id: Option<String>,
    result: Value,
}

/// `call_initiation_failure` has no official example; community handlers read these fields,
/// `metadata` being `{type: twilio|sip, body: <the carrier's callback>}` [COMMUNITY].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InitiationFailure {
    agent_id: Option<String>,
    conversation_id: Option<String>,
    failure_reason: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl Provider for ElevenLabs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn admits(&self, body: &[u8]) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Kind<'a> {
            #[serde(borrow, rename = "type")]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        match serde_json::from_slice::<Kind<'_>>(body) {
            Ok(Kind { kind: Some(kind) }) if kind == "post_call_audio" => Err(Error::Unusable(
                "ElevenLabs call audio is not kept (a whole call's audio exceeds what a Lambda \
                 invocation and a DynamoDB item can hold): leave `audio` out of this webhook's \
                 events in ElevenLabs."
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    fn auth_defaults(&self) -> AuthDefaults {
        AuthDefaults {
            scheme: "elevenlabs",
            header: "elevenlabs-signature",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let head: Head = from_json(body)?;
        match head.kind.as_str() {
            "post_call_transcription" => transcription(&src, &head.kind, from_json(body)?),
            "call_initiation_failure" => initiation_failure(&src, &head.kind, from_json(body)?),
            kind => {
                let conversation_id = head.data.filter(|id| !id.trim().is_empty());
                let call_id = conversation_id.as_deref().unwrap_or("unknown");
                let (event, at) = (EventType::Unknown, head.event_timestamp);
                Ok(vec![match &conversation_id {
                    // Audio: only its envelope is kept, under the same identity as the others.
                    Some(id) if kind == "post_call_audio" => src.event_identified(
                        &identity(id, kind),
                        event,
                        kind,
                        call_id,
                        at,
                        EventData::Opaque,
                    ),
                    _ => src.event(event, kind, call_id, at, EventData::Opaque),
                }])
            }
        }
    }
}

fn transcription(
    src: &Source<'_>,
    kind: &str,
    payload: Payload<Conversation>,
) -> Result<Vec<CanonicalEvent>> {
    let data = payload.data;
    let call_id = required_id(data.conversation_id.clone(), "data.conversation_id")?;
    let metadata = data.metadata.unwrap_or_default();
    let started_at = metadata.start_time_unix_secs;
    let duration_ms = metadata.call_duration_secs;
    let ended_at = match (started_at, duration_ms) {
        (Some(start), Some(duration)) => start.checked_add(duration),
        _ => None,
    };
    let (direction, from_number, to_number) = match metadata.phone_call {
        Some(phone) => numbers(
            phone.direction.as_deref(),
            phone.agent_number,
            phone.external_number,
        ),
        // A web conversation: no direction, no numbers.
        None => (None, None, None),
    };

    let mut client_data = data.conversation_initiation_client_data.unwrap_or_default();
    let dynamic_variables = match client_data.remove("dynamic_variables") {
        Some(Value::Object(variables)) => Some(variables),
        _ => None,
    };
    let mut record_metadata = client_data;
    if let Some(user_id) = data.user_id.filter(|u| !u.trim().is_empty()) {
        record_metadata
            .entry("user_id")
            .or_insert(Value::String(user_id));
    }
    if let Some(fiat) = metadata.cost_fiat {
        record_metadata.insert("cost_fiat".to_owned(), Value::Number(fiat));
    }

    let outcome = match data.status.as_deref() {
        Some("failed") => "failed",
        // A post-call webhook comes after the conversation: it took place.
        _ => "completed",
    };
    let ended = CallPatch {
        agent: agent(data.agent_id, data.version_id),
        direction,
        from_number,
        to_number,
        status: Some(CallStatus::Ended),
        provider_status: data.status,
        outcome: Some(outcome.to_owned()),
        started_at,
        ended_at,
        duration_ms,
        // `""` when the conversation ended normally: absent.
        end_reason: metadata.termination_reason.filter(|r| !r.trim().is_empty()),
        transcript: data
            .transcript
            .map(|turns| turns.iter().flat_map(turns_of).collect()),
        dynamic_variables,
        metadata: Some(record_metadata).filter(|m| !m.is_empty()),
        ..CallPatch::default()
    };
    let at = ended_at.or(payload.event_timestamp);
    let identity = identity(&call_id, kind);
    let mut events = vec![src.event_identified(
        &identity,
        EventType::CallEnded,
        kind,
        &call_id,
        at,
        EventData::Call(Box::new(ended)),
    )];

    let cost = metadata.cost.map(|amount| Cost {
        amount,
        unit: "credits".to_owned(),
    });
    let analysis = data
        .analysis
        .as_ref()
        .map(analysis)
        .filter(|a| !a.is_empty());
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

/// A call that never connected. Its direction and numbers come from the carrier's callback when
/// it is Twilio's (`Direction`, `From`, `To`); the duration is 0, so the record marks an inbound
/// one missed.
fn initiation_failure(
    src: &Source<'_>,
    kind: &str,
    payload: Payload<InitiationFailure>,
) -> Result<Vec<CanonicalEvent>> {
    let data = payload.data;
    let call_id = required_id(data.conversation_id.clone(), "data.conversation_id")?;
    let carrier = data
        .metadata
        .as_ref()
        .filter(|m| m.get("type").and_then(Value::as_str) == Some("twilio"))
        .and_then(|m| m.get("body"))
        .and_then(Value::as_object);
    let field = |name: &str| {
        carrier
            .and_then(|body| body.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let direction = field("Direction").and_then(|d| {
        let d = d.to_ascii_lowercase();
        if d.starts_with("inbound") {
            Some("inbound".to_owned())
        } else if d.starts_with("outbound") {
            Some("outbound".to_owned())
        } else {
            None
        }
    });
    let reason = data.failure_reason.filter(|r| !r.trim().is_empty());
    // (rule) busy → busy, no-answer → no_answer, unknown → failed.
    let outcome = match reason.as_deref().map(str::trim) {
        None | Some("unknown") => "failed".to_owned(),
        Some(reason) => outcome_of(reason),
    };
    let ended_at = payload.event_timestamp;
    let patch = CallPatch {
        agent: agent(data.agent_id, None),
        direction,
        from_number: field("From"),
        to_number: field("To"),
        status: Some(CallStatus::Ended),
        outcome: Some(outcome),
        ended_at,
        duration_ms: Some(0),
        end_reason: reason,
        metadata: data.metadata.filter(|m| !m.is_empty()),
        ..CallPatch::default()
    };
    Ok(vec![src.event_identified(
        &identity(&call_id, kind),
        EventType::CallEnded,
        kind,
        &call_id,
        ended_at,
        EventData::Call(Box::new(patch)),
    )])
}

fn agent(id: Option<String>, version: Option<String>) -> Option<Agent> {
    (id.is_some() || version.is_some()).then_some(Agent { id, version })
}

/// Direction, from and to: the caller is the external number of an inbound call, the agent's
/// number calls out.
fn numbers(
    direction: Option<&str>,
    agent_number: Option<String>,
    external_number: Option<String>,
) -> (Option<String>, Option<String>, Option<String>) {
    match direction.map(str::trim) {
        Some("inbound") => (Some("inbound".into()), external_number, agent_number),
        Some("outbound") => (Some("outbound".into()), agent_number, external_number),
        _ => (None, None, None),
    }
}

/// A transcript entry as turns: its message, or else each tool call (`name(params)`) and tool
/// result as a `tool` turn.
fn turns_of(entry: &TurnIn) -> Vec<Turn> {
    let Some(role) = entry.role.as_deref() else {
        return Vec::new();
    };
    if let Some(message) = entry.message.as_deref().filter(|m| !m.trim().is_empty()) {
        return vec![Turn::new(role, message)];
    }
    let calls = entry.tool_calls.iter().flatten().filter_map(|call| {
        let name = call.tool_name.as_deref()?;
        Some(match &call.params_as_json {
            None | Some(Value::Null) => name.to_owned(),
            Some(params) => format!("{name}({})", text_of(params)),
        })
    });
    let results = entry
        .tool_results
        .iter()
        .flatten()
        .filter_map(|result| result.result_value.as_ref().filter(|v| !v.is_null()))
        .map(text_of);
    calls
        .chain(results)
        .map(|content| Turn::new("tool", content))
        .collect()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `transcript_summary`; each data collection result (its value, typed by its JSON schema),
/// each evaluation criterion's result and `call_successful` as data items.
fn analysis(a: &AnalysisIn) -> Analysis {
    let mut data = Vec::new();
    let collected = a
        .data_collection_results
        .iter()
        .flatten()
        .map(|(id, item)| (id.as_str(), item))
        .chain(
            a.data_collection_results_list
                .iter()
                .flatten()
                .filter(|_| a.data_collection_results.is_none())
                .filter_map(|item| Some((item.data_collection_id.as_deref()?, item))),
        );
    for (id, item) in collected {
        let kind = item
            .json_schema
            .as_ref()
            .and_then(|schema| schema.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| json_type(&item.value));
        data.push(AnalysisItem {
            name: id.to_owned(),
            kind: kind.to_owned(),
            value: item.value.clone(),
        });
    }
    let evaluated = a
        .evaluation_criteria_results
        .iter()
        .flatten()
        .map(|(id, item)| (id.as_str(), item))
        .chain(
            a.evaluation_criteria_results_list
                .iter()
                .flatten()
                .filter(|_| a.evaluation_criteria_results.is_none())
                .filter_map(|item| Some((item.criteria_id.as_deref()?, item))),
        );
    for (id, item) in evaluated {
        data.push(AnalysisItem {
            name: id.to_owned(),
            kind: "evaluation".to_owned(),
            value: item.result.clone(),
        });
    }
    if let Some(value) = a.call_successful.as_ref().filter(|v| !v.is_null()) {
        data.push(AnalysisItem {
            name: "call_successful".to_owned(),
            kind: "evaluation".to_owned(),
            value: value.clone(),
        });
    }
    Analysis {
        summary: a.transcript_summary.clone(),
        sentiment: None,
        data,
    }
}

fn identity(conversation_id: &str, kind: &str) -> String {
    Value::from(vec![conversation_id, kind]).to_string()
}

fn de_conversation_id<'de, D: Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<String>, D::Error> {
    StringField("conversation_id").deserialize(de)
}

/// Unix seconds as ms: an integer or fractional number, or a numeric string. A value in
/// milliseconds is refused, not misread as a date thousands of years away.
fn secs_to_ms(value: &Value) -> std::result::Result<Option<i64>, ()> {
    let seconds = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    seconds
        .and_then(seconds_to_ms)
        .filter(|ms| *ms <= MAX_MS)
        .map(Some)
        .ok_or(())
}

fn de_unix_secs<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<i64>, D::Error> {
    secs_to_ms(&Value::deserialize(de)?).map_err(|()| de::Error::custom("not unix seconds"))
}

/// For events stored as `unknown`: any instant, or nothing.
fn de_loose_secs<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<i64>, D::Error> {
    let value = Value::deserialize(de)?;
    Ok(secs_to_ms(&value)
        .ok()
        .flatten()
        .or_else(|| value_to_ms(&value).ok().flatten()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use serde_json::json;

    const TRANSCRIPTION: &[u8] =
        include_bytes!("../../../tests/fixtures/elevenlabs/post_call_transcription.json");
    const INITIATION_FAILURE: &[u8] =
        include_bytes!("../../../tests/fixtures/elevenlabs/call_initiation_failure.json");

    const CONVERSATION: &str = "conv_4701k2mq8d3fz6e5xv9tb2ar7c1";
    const FAILED_CONVERSATION: &str = "conv_6201k2mx4c8vb1n3m5q7w9e2r4t6";
    const AGENT: &str = "agent_2101k2mbv0xj4fq9e8d7c6b5a4z3";
    /// `start_time_unix_secs` 1786699800 (2026-08-14T09:30:00Z), 185 s long.
    const START: i64 = 1_786_699_800_000;
    const END: i64 = 1_786_699_985_000;

    fn ctx() -> DeliveryContext {
        DeliveryContext {
            received_at: 1_786_800_000_000,
            delivery_id: None,
        }
    }

    fn parse(body: &[u8]) -> Vec<CanonicalEvent> {
        let provider: &dyn Provider = &ElevenLabs;
        provider.parse(body, &ctx()).unwrap()
    }

    fn parse_json(value: &Value) -> Vec<CanonicalEvent> {
        parse(value.to_string().as_bytes())
    }

    fn error(body: &[u8]) -> Error {
        let provider: &dyn Provider = &ElevenLabs;
        provider.parse(body, &ctx()).unwrap_err()
    }

    fn fixture(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    fn record(events: &[CanonicalEvent]) -> CallRecord {
        CallRecord::from_events(events).unwrap()
    }

    #[test]
    fn post_call_transcription_is_call_ended_and_call_analyzed() {
        let events = parse(TRANSCRIPTION);
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::CallEnded, EventType::CallAnalyzed]);
        for event in &events {
            assert_eq!(event.provider, "elevenlabs");
            assert_eq!(event.provider_event, "post_call_transcription");
            assert_eq!(event.call_id, CONVERSATION);
            assert_eq!(event.occurred_at, Some(END));
        }
        assert_ne!(events[0].dedupe_key, events[1].dedupe_key);

        let ended = patch(&events[0]);
        assert_eq!(
            ended.agent,
            Some(Agent {
                id: Some(AGENT.into()),
                version: Some("agtvrsn_0901k2mf3e5d7c9b1a2z4y6x8w".into())
            })
        );
        assert_eq!(ended.status, Some(CallStatus::Ended));
        assert_eq!(ended.provider_status.as_deref(), Some("done"));
        assert_eq!(ended.outcome.as_deref(), Some("completed"));
        // Inbound: the external number called the agent's number.
        assert_eq!(ended.direction.as_deref(), Some("inbound"));
        assert_eq!(ended.from_number.as_deref(), Some("+14155550162"));
        assert_eq!(ended.to_number.as_deref(), Some("+14155550100"));
        assert_eq!(ended.started_at, Some(START), "unix seconds × 1000");
        assert_eq!(ended.duration_ms, Some(185_000));
        assert_eq!(ended.ended_at, Some(END), "start + duration");
        assert_eq!(
            ended.end_reason.as_deref(),
            Some("Call ended by remote party")
        );
        assert_eq!(ended.recording_url, None);
        assert_eq!(ended.cost, None);
        assert_eq!(ended.analysis, None);

        let turns: Vec<(&str, &str)> = ended
            .transcript
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| (t.role.as_ref(), t.content.as_str()))
            .collect();
        assert_eq!(
            turns,
            [
                (
                    "agent",
                    "Thanks for calling Northwind Outfitters, this is Ava. How can I help you today?"
                ),
                (
                    "user",
                    "Hi, I'm checking on order A-77120. It hasn't arrived yet."
                ),
                ("tool", "lookup_order({\"order_number\":\"A-77120\"})"),
                (
                    "tool",
                    "{\"status\":\"shipped\",\"carrier\":\"UPS\",\"eta\":\"2026-08-17\"}"
                ),
                (
                    "agent",
                    "Your order shipped with UPS and should arrive on Monday, August 17th. Would you like the tracking link by text?"
                ),
                ("user", "Yes please, to this number. That's all, thanks."),
            ]
        );

        let variables = ended.dynamic_variables.as_ref().unwrap();
        assert_eq!(variables["customer_name"], json!("Jordan Reyes"));
        assert_eq!(
            variables["system__call_sid"],
            json!("CA9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a")
        );
        let metadata = ended.metadata.as_ref().unwrap();
        assert_eq!(metadata["user_id"], json!("cust_48213"));
        assert_eq!(metadata["cost_fiat"].to_string(), "0.1427");
        assert!(metadata.contains_key("conversation_config_override"));
        assert!(
            !metadata.contains_key("dynamic_variables"),
            "kept once, as variables"
        );

        let analyzed = patch(&events[1]);
        assert_eq!(analyzed.status, Some(CallStatus::Ended));
        let cost = analyzed.cost.as_ref().unwrap();
        assert_eq!(
            (cost.amount.to_string().as_str(), cost.unit.as_str()),
            ("1184", "credits")
        );
        let analysis = analyzed.analysis.as_ref().unwrap();
        assert!(
            analysis
                .summary
                .as_deref()
                .unwrap()
                .starts_with("The caller asked about order")
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
                ("order_number", "string", &json!("A-77120")),
                ("wants_sms_tracking", "boolean", &json!(true)),
                ("resolved_inquiry", "evaluation", &json!("success")),
                ("call_successful", "evaluation", &json!("success")),
            ]
        );
    }

    #[test]
    fn the_conversation_merges_into_one_record() {
        let record = record(&parse(TRANSCRIPTION));
        assert_eq!(record.call_id, CONVERSATION);
        assert_eq!(record.status, Some(CallStatus::Ended));
        assert_eq!(record.duration_ms, Some(185_000));
        assert_eq!(record.transcript.len(), 6);
        assert!(record.analysis.is_some());
        assert!(!record.missed);
    }

    #[test]
    fn an_empty_termination_reason_is_absent_and_a_failed_status_fails() {
        let mut body = fixture(TRANSCRIPTION);
        body["data"]["metadata"]["termination_reason"] = json!("");
        body["data"]["status"] = json!("failed");
        let events = parse_json(&body);
        let p = patch(&events[0]);
        assert_eq!(p.end_reason, None);
        assert_eq!(p.outcome.as_deref(), Some("failed"));
        assert_eq!(p.provider_status.as_deref(), Some("failed"));
    }

    #[test]
    fn outbound_and_web_conversations_map_their_numbers() {
        let mut outbound = fixture(TRANSCRIPTION);
        outbound["data"]["metadata"]["phone_call"]["direction"] = json!("outbound");
        let events = parse_json(&outbound);
        let p = patch(&events[0]);
        assert_eq!(p.direction.as_deref(), Some("outbound"));
        assert_eq!(p.from_number.as_deref(), Some("+14155550100"));
        assert_eq!(p.to_number.as_deref(), Some("+14155550162"));

        let mut web = fixture(TRANSCRIPTION);
        web["data"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("phone_call");
        let events = parse_json(&web);
        let p = patch(&events[0]);
        assert_eq!(
            (&p.direction, &p.from_number, &p.to_number),
            (&None, &None, &None)
        );
    }

    #[test]
    fn the_documented_example_parses() {
        // The docs' example (elevenlabs-docs post-call-webhook.mdx), abridged to its fields.
        let body = json!({
            "type": "post_call_transcription",
            "event_timestamp": 1_739_537_297,
            "data": {
                "agent_id": "xyz", "conversation_id": "abc", "status": "done",
                "transcript": [{"role": "agent", "message": "Hey there angelo. How are you?",
                    "tool_calls": null, "tool_results": null, "feedback": null,
                    "time_in_call_secs": 0, "conversation_turn_metrics": null}],
                "metadata": {"start_time_unix_secs": 1_739_537_297, "call_duration_secs": 22,
                    "cost": 296, "termination_reason": ""},
                "analysis": {"evaluation_criteria_results": {}, "data_collection_results": {},
                    "call_successful": "success", "transcript_summary": "Brief."},
                "conversation_initiation_client_data": {"dynamic_variables": {"user_name": "angelo"}}
            }
        });
        let events = parse_json(&body);
        assert_eq!(events.len(), 2);
        let ended = patch(&events[0]);
        assert_eq!(ended.started_at, Some(1_739_537_297_000));
        assert_eq!(ended.ended_at, Some(1_739_537_319_000));
        assert_eq!(ended.metadata, None, "nothing but the variables was sent");
        assert_eq!(
            patch(&events[1]).cost.as_ref().unwrap().amount.to_string(),
            "296"
        );
    }

    #[test]
    fn list_forms_of_the_analysis_are_read_when_the_maps_are_absent() {
        let mut body = fixture(TRANSCRIPTION);
        let analysis = body["data"]["analysis"].as_object_mut().unwrap();
        analysis.remove("data_collection_results");
        analysis.remove("evaluation_criteria_results");
        analysis.insert(
            "data_collection_results_list".into(),
            json!([{"data_collection_id": "order_number", "value": "A-1", "rationale": "said"}]),
        );
        analysis.insert(
            "evaluation_criteria_results_list".into(),
            json!([{"criteria_id": "polite", "result": "failure", "rationale": "rude"}]),
        );
        let events = parse_json(&body);
        let names: Vec<_> = patch(&events[1])
            .analysis
            .as_ref()
            .unwrap()
            .data
            .iter()
            .map(|i| (i.name.as_str(), i.kind.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("order_number", "string"),
                ("polite", "evaluation"),
                ("call_successful", "evaluation")
            ]
        );
    }

    #[test]
    fn call_initiation_failure_is_an_ended_call_that_never_connected() {
        let events = parse(INITIATION_FAILURE);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(event.provider_event, "call_initiation_failure");
        assert_eq!(event.call_id, FAILED_CONVERSATION);
        assert_eq!(
            event.occurred_at,
            Some(1_786_705_958_000),
            "event_timestamp in ms"
        );
        let p = patch(event);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.outcome.as_deref(), Some("no_answer"));
        assert_eq!(p.end_reason.as_deref(), Some("no-answer"));
        assert_eq!(p.duration_ms, Some(0));
        assert_eq!(p.ended_at, Some(1_786_705_958_000));
        assert_eq!(p.agent.as_ref().unwrap().id.as_deref(), Some(AGENT));
        // From the carrier's (Twilio's) callback.
        assert_eq!(p.direction.as_deref(), Some("outbound"));
        assert_eq!(p.from_number.as_deref(), Some("+14155550100"));
        assert_eq!(p.to_number.as_deref(), Some("+14155550148"));
        assert_eq!(p.metadata.as_ref().unwrap()["type"], json!("twilio"));
        assert_eq!(p.transcript, None);
    }

    #[test]
    fn failure_reasons_map_to_outcomes_and_inbound_failures_are_missed() {
        for (reason, outcome) in [
            (json!("busy"), "busy"),
            (json!("no-answer"), "no_answer"),
            (json!("unknown"), "failed"),
            (json!(null), "failed"),
            (json!("carrier-rejected"), "carrier-rejected"),
        ] {
            for (direction, missed) in [("inbound", true), ("outbound-api", false)] {
                let mut body = fixture(INITIATION_FAILURE);
                body["data"]["failure_reason"] = reason.clone();
                body["data"]["metadata"]["body"]["Direction"] = json!(direction);
                let events = parse_json(&body);
                assert_eq!(
                    patch(&events[0]).outcome.as_deref(),
                    Some(outcome),
                    "{reason}"
                );
                let record = record(&events);
                assert_eq!(record.missed, missed, "{reason} {direction}");
                assert_eq!(record.duration_ms, Some(0));
            }
        }
        // A SIP failure names no Twilio fields: no direction, nothing invented.
        let mut sip = fixture(INITIATION_FAILURE);
        sip["data"]["metadata"] = json!({"type": "sip", "body": {"Direction": "inbound"}});
        let events = parse_json(&sip);
        assert_eq!(patch(&events[0]).direction, None);
    }

    #[test]
    fn post_call_audio_is_stored_as_an_envelope_of_its_conversation() {
        let audio = format!(
            "{{\"type\":\"post_call_audio\",\"event_timestamp\":1786699994,\"data\":{{\"agent_id\":\"{AGENT}\",\"full_audio\":\"{}\",\"conversation_id\":\"{CONVERSATION}\"}}}}",
            "SUQzBAAAAAAA".repeat(20_000)
        );
        let events = parse(audio.as_bytes());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::Unknown);
        assert_eq!(events[0].provider_event, "post_call_audio");
        assert_eq!(events[0].call_id, CONVERSATION);
        assert_eq!(events[0].occurred_at, Some(1_786_699_994_000));
        assert_eq!(events[0].data, EventData::Opaque);
        // Deduplicated on (conversation_id, type): the same audio re-sent is the same delivery.
        let again = audio.replace("\"type\":", "\"type\" :");
        assert_eq!(parse(again.as_bytes())[0].dedupe_key, events[0].dedupe_key);
    }

    #[test]
    fn other_types_are_unknown_whatever_their_data_holds() {
        for body in [
            json!({"type": "post_call_transcription_otel", "data": {"conversation_id": "c1"}}),
            json!({"type": "unredacted_transcript", "event_timestamp": "soon", "data": [1, 2]}),
            json!({"type": "post_call_audio", "data": "not an object"}),
            json!({"type": "post_call_audio", "data": {"conversation_id": 12}}),
            json!({"type": "something_new"}),
        ] {
            let events = parse_json(&body);
            assert_eq!(events.len(), 1, "{body}");
            assert_eq!(events[0].event_type, EventType::Unknown, "{body}");
            assert_eq!(events[0].provider_event, body["type"].as_str().unwrap());
            assert_eq!(events[0].data, EventData::Opaque);
        }
        let otel = parse_json(&json!({"type": "post_call_transcription_otel",
            "data": {"conversation_id": "c1"}}));
        assert_eq!(otel[0].call_id, "c1");
        let other = parse_json(&json!({"type": "something_new"}));
        assert_eq!(other[0].call_id, "unknown");
        // Deduplicated on the body, not on the conversation.
        let spaced =
            br#"{"type": "post_call_transcription_otel", "data": {"conversation_id": "c1"} }"#;
        assert_ne!(parse(spaced)[0].dedupe_key, otel[0].dedupe_key);
    }

    #[test]
    fn dedupe_keys_name_the_conversation_and_the_type() {
        for body in [TRANSCRIPTION, INITIATION_FAILURE] {
            let first: Vec<_> = parse(body).into_iter().map(|e| e.dedupe_key).collect();
            let retry = serde_json::to_vec_pretty(&fixture(body)).unwrap();
            let again: Vec<_> = parse(&retry).into_iter().map(|e| e.dedupe_key).collect();
            assert_eq!(first, again, "a re-serialized retry is the same delivery");
        }
        let mut resent = fixture(TRANSCRIPTION);
        resent["event_timestamp"] = json!(1_786_700_100);
        assert_eq!(
            parse(TRANSCRIPTION)[0].dedupe_key,
            parse_json(&resent)[0].dedupe_key
        );
        let mut other = fixture(TRANSCRIPTION);
        other["data"]["conversation_id"] = json!("conv_other");
        assert_ne!(
            parse(TRANSCRIPTION)[0].dedupe_key,
            parse_json(&other)[0].dedupe_key
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_malformed() {
        for body in [&b""[..], b"post_call_transcription", b"[]", b"{\"type\": "] {
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
        let with = |pointer: &str, value: Value| {
            let mut body = fixture(TRANSCRIPTION);
            *body.pointer_mut(pointer).unwrap() = value;
            body
        };
        for (body, field) in [
            (json!({"data": {}}), "type"),
            (json!({"type": 3}), "type"),
            (json!({"type": "post_call_transcription"}), "data"),
            (
                json!({"type": "post_call_transcription", "data": {}}),
                "data.conversation_id",
            ),
            (
                json!({"type": "call_initiation_failure", "data": {"failure_reason": "busy"}}),
                "data.conversation_id",
            ),
            (with("/data/transcript", json!("hello")), "data.transcript"),
            (
                with("/data/metadata/start_time_unix_secs", json!("soon")),
                "data.metadata.start_time_unix_secs",
            ),
            // Milliseconds where seconds are documented: refused, not misread.
            (
                with(
                    "/data/metadata/start_time_unix_secs",
                    json!(1_786_699_800_000_i64),
                ),
                "data.metadata.start_time_unix_secs",
            ),
            (
                with("/data/metadata/call_duration_secs", json!(-3)),
                "data.metadata.call_duration_secs",
            ),
            (
                with("/data/metadata/cost", json!("many")),
                "data.metadata.cost",
            ),
            (with("/event_timestamp", json!({"s": 1})), "event_timestamp"),
        ] {
            let err = error(body.to_string().as_bytes());
            assert_eq!(err.status(), 422, "{body}");
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn no_prefix_of_a_delivery_panics() {
        let provider: &dyn Provider = &ElevenLabs;
        for body in [TRANSCRIPTION, INITIATION_FAILURE] {
            for end in (0..body.len()).step_by(11) {
                let _ = provider.parse(&body[..end], &ctx());
            }
        }
    }
}
