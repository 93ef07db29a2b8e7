//! Synthflow's per-call completion webhook (`external_webhook_url`).
//!
//! One delivery per call, after it ends: it yields `call_ended`, plus `call_analyzed` when
//! `executed_actions` returned values. The transcript is one string of `bot:` / `human:` lines
//! with irregular spacing and newlines; it is split into turns. Synthflow's `model_id` is the
//! agent id and the lead's phone is the callee (these calls are placed through Synthflow's API).

use super::vox::json_type;
use super::{AuthDefaults, Provider, Source, from_json, outcome_of, required_id};
use crate::error::Result;
use crate::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, DeliveryContext,
    EventData, EventType, Turn,
};
use crate::timefmt::{de_flexible, de_seconds_as_ms};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct Synthflow;

const NAME: &str = "synthflow";

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    lead: Option<Map<String, Value>>,
    call: Call,
    #[serde(default)]
    executed_actions: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Call {
    status: Option<String>,
    end_call_reason: Option<String>,
    model_id: Option<String>,
    call_id: Option<String>,
    #[serde(deserialize_with = "de_seconds_as_ms")]
    duration: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    start_time: Option<i64>,
    transcript: Option<Value>,
    recording_url: Option<String>,
}

impl Provider for Synthflow {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        // Synthflow's own signature covers only the call id, not the body: a URL token is the
        // default, and any body-signing scheme can be configured instead.
        AuthDefaults {
            scheme: "token",
            header: "X-Synthflow-Signature",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let payload: Payload = from_json(body)?;
        let call = payload.call;
        let call_id = required_id(call.call_id, "call.call_id")?;
        let started_at = call.start_time;
        let ended_at = match (started_at, call.duration) {
            (Some(start), Some(duration)) => start.checked_add(duration),
            _ => None,
        };
        let status = call.status.or(payload.status);
        let lead_phone = payload
            .lead
            .as_ref()
            .and_then(|lead| lead.get("phone_number").or_else(|| lead.get("phone")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let patch = CallPatch {
            agent: call.model_id.map(|id| Agent {
                id: Some(id),
                version: None,
            }),
            direction: Some("outbound".to_owned()),
            to_number: lead_phone,
            status: Some(CallStatus::Ended),
            outcome: status.as_deref().map(outcome_of),
            provider_status: status,
            started_at,
            ended_at,
            duration_ms: call.duration,
            end_reason: call.end_call_reason.or(payload.error_message),
            transcript: call.transcript.as_ref().map(transcript),
            recording_url: call.recording_url,
            lead: payload.lead,
            ..CallPatch::default()
        };

        let mut events = vec![src.event(
            EventType::CallEnded,
            "call_completed",
            &call_id,
            ended_at,
            EventData::Call(Box::new(patch)),
        )];
        let data = action_results(payload.executed_actions.as_ref());
        if !data.is_empty() {
            let analyzed = CallPatch {
                status: Some(CallStatus::Ended),
                analysis: Some(Analysis {
                    data,
                    ..Analysis::default()
                }),
                ..CallPatch::default()
            };
            events.push(src.event(
                EventType::CallAnalyzed,
                "call_completed",
                &call_id,
                ended_at,
                EventData::Call(Box::new(analyzed)),
            ));
        }
        Ok(events)
    }
}

/// The return values of executed actions: each key of an object return value becomes one item;
/// a scalar return value is named after its action.
fn action_results(actions: Option<&Map<String, Value>>) -> Vec<AnalysisItem> {
    let mut items = Vec::new();
    for (key, action) in actions.into_iter().flatten() {
        let name = action.get("name").and_then(Value::as_str).unwrap_or(key);
        match action.get("return_value") {
            None | Some(Value::Null) => {}
            Some(Value::Object(values)) => items.extend(values.iter().map(|(k, v)| AnalysisItem {
                name: k.clone(),
                kind: json_type(v).to_owned(),
                value: v.clone(),
            })),
            Some(value) => items.push(AnalysisItem {
                name: name.to_owned(),
                kind: json_type(value).to_owned(),
                value: value.clone(),
            }),
        }
    }
    items
}

/// Synthflow sends the transcript as one string; a list of `{role, content}` is accepted too.
fn transcript(value: &Value) -> Vec<Turn> {
    match value {
        Value::String(text) => split_transcript(text),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let role = item.get("role")?.as_str()?;
                let content = item.get("content").or_else(|| item.get("text"))?.as_str()?;
                Some(Turn::new(role, content))
            })
            .collect(),
        _ => Vec::new(),
    }
}

const SPEAKERS: [&str; 6] = ["bot", "human", "agent", "user", "assistant", "customer"];

/// Splits `bot: …` / `human: …` lines into turns. A line without a speaker continues the turn
/// before it; text before the first speaker is kept with role `unknown`.
pub fn split_transcript(text: &str) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match speaker(line) {
            Some((role, rest)) => turns.push(Turn::new(role, rest.trim())),
            None => match turns.last_mut() {
                Some(last) if !last.content.is_empty() => {
                    last.content.push(' ');
                    last.content.push_str(line);
                }
                Some(last) => last.content.push_str(line),
                None => turns.push(Turn::new("unknown", line)),
            },
        }
    }
    turns
}

fn speaker(line: &str) -> Option<(&'static str, &str)> {
    let (head, rest) = line.split_once(':')?;
    let head = head.trim();
    SPEAKERS
        .into_iter()
        .find(|s| head.eq_ignore_ascii_case(s))
        .map(|s| (s, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines_become_turns() {
        let turns =
            split_transcript("\nbot:  Hello there \nhuman:  Yes.\n  I want a car.\nBOT:ok\n\n");
        let pairs: Vec<_> = turns
            .iter()
            .map(|t| (t.role.as_ref(), t.content.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("agent", "Hello there"),
                ("user", "Yes. I want a car."),
                ("agent", "ok")
            ]
        );
    }

    #[test]
    fn text_before_any_speaker_is_kept() {
        let turns = split_transcript("static\nbot: hi");
        assert_eq!(turns[0].role, "unknown");
        assert_eq!(turns[0].content, "static");
        assert_eq!(turns[1].content, "hi");
    }

    #[test]
    fn a_colon_in_speech_is_not_a_speaker() {
        let turns = split_transcript("human: the time is 10:30");
        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].content, "the time is 10:30");
    }
}
