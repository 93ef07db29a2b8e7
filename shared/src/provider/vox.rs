//! Vox agent webhooks, v2 (`{event, webhook_version: "v2", call}`) and legacy v1.
//!
//! v1 differs field by field (`agent_id`, `call_from`/`call_to`, `start_timestamp`/
//! `end_timestamp`, `duration_ms`, `transcript_with_tool_calls`, `call_cost.total_credits_used`,
//! `mid_call` data under the `mid_call` key) and carries cost and analysis in `call_ended`, which
//! therefore yields `call_ended` + `call_analyzed`. One payload type accepts both versions: every
//! field is optional, unknown fields are ignored, and the mapping picks whichever name is present.

use super::{AuthDefaults, Provider, Source, from_json, outcome_of, required_id};
use crate::error::Result;
use crate::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, Cost, DeliveryContext,
    EventData, EventType, Turn,
};
use crate::timefmt::de_millis;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, Default)]
pub struct Vox;

const NAME: &str = "vox";

#[derive(Debug, Deserialize)]
struct Payload {
    event: String,
    #[serde(default)]
    webhook_version: Option<String>,
    #[serde(default)]
    call: Option<Call>,
    /// v1 `mid_call` events carry their data here instead of under `call`.
    #[serde(default)]
    mid_call: Option<Call>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Call {
    call_id: Option<String>,
    agent: Option<AgentIn>,
    agent_id: Option<String>,
    agent_version: Option<Value>,
    call_type: Option<String>,
    from_number: Option<String>,
    to_number: Option<String>,
    call_from: Option<String>,
    call_to: Option<String>,
    dynamic_variables: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    #[serde(deserialize_with = "de_millis")]
    start_at: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    start_timestamp: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    end_at: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    end_timestamp: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    occurred_at: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "de_millis")]
    duration_ms: Option<i64>,
    call_status: Option<String>,
    disconnection_reason: Option<String>,
    transcript: Option<Vec<TurnIn>>,
    transcript_with_tool_calls: Option<Vec<TurnIn>>,
    recording_url: Option<String>,
    call_cost: Option<CostIn>,
    call_analysis: Option<AnalysisIn>,
    event_type: Option<String>,
    event_data: Option<TurnIn>,
    opt_out_sensitive_data_storage: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AgentIn {
    agent_id: Option<String>,
    agent_version: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TurnIn {
    #[serde(deserialize_with = "crate::event::de_role")]
    role: Option<Cow<'static, str>>,
    content: Option<String>,
    /// Tool-call entries of `transcript_with_tool_calls` name a tool instead of speaking.
    name: Option<String>,
    arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CostIn {
    total_cost: Option<Number>,
    total_credits_used: Option<Number>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AnalysisIn {
    summary: Option<String>,
    user_sentiment: Option<String>,
    custom_analysis_data: Option<Vec<AnalysisItemIn>>,
}

#[derive(Debug, Deserialize)]
struct AnalysisItemIn {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    value: Value,
}

impl Provider for Vox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        // Vox's documents state no signing scheme: a per-source URL token is the default.
        AuthDefaults {
            scheme: "token",
            header: "X-Vox-Signature",
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
        let legacy = payload.webhook_version.is_none();
        let event_type = EventType::parse(&payload.event).filter(|t| {
            matches!(
                t,
                EventType::CallStarted
                    | EventType::MidCall
                    | EventType::CallEnded
                    | EventType::CallAnalyzed
            )
        });
        let (mut call, call_field) = match (event_type, payload.call, payload.mid_call) {
            (Some(EventType::MidCall), call, Some(mid)) if legacy || call.is_none() => {
                (mid, "mid_call")
            }
            (_, Some(call), _) => (call, "call"),
            (None, None, Some(mid)) => (mid, "mid_call"),
            (Some(_), None, _) => {
                return Err(crate::Error::unusable(
                    "The required field `call` is missing.",
                ));
            }
            (None, None, None) => (Call::default(), "call"),
        };

        let Some(event_type) = event_type else {
            // A new Vox event: stored as `unknown` with whatever call id it names.
            let call_id = call
                .call_id
                .filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| "unknown".into());
            let at = call.occurred_at.or(call.timestamp);
            return Ok(vec![src.event(
                EventType::Unknown,
                &payload.event,
                &call_id,
                at,
                EventData::Opaque,
            )]);
        };
        let field = if call_field == "call" {
            "call.call_id"
        } else {
            "mid_call.call_id"
        };
        let call_id = required_id(call.call_id.take(), field)?;

        let mut patch = common_patch(&mut call);
        let occurred_at;
        match event_type {
            EventType::CallStarted => {
                patch.status = Some(CallStatus::InProgress);
                occurred_at = patch.started_at;
            }
            EventType::MidCall => {
                patch.status = Some(CallStatus::InProgress);
                occurred_at = call.occurred_at.or(call.timestamp);
                if call.event_type.as_deref() == Some("call_message") {
                    patch.live_turn = call.event_data.take().and_then(turn).map(|mut t| {
                        t.at = occurred_at;
                        t
                    });
                }
            }
            _ => {
                end_fields(&mut call, &mut patch);
                occurred_at = patch.ended_at;
            }
        }

        let analysis_patch = analysis_patch(&mut call);
        let mut events = Vec::with_capacity(2);
        if event_type == EventType::CallEnded && legacy {
            // v1: cost and analysis ride on call_ended; they become their own call_analyzed.
            if let Some(mut analyzed) = analysis_patch {
                analyzed.status = Some(CallStatus::Ended);
                let data = EventData::Call(Box::new(analyzed));
                events.push(src.event(
                    EventType::CallAnalyzed,
                    &payload.event,
                    &call_id,
                    occurred_at,
                    data,
                ));
            }
        } else if let Some(analyzed) = analysis_patch {
            patch.cost = analyzed.cost;
            patch.analysis = analyzed.analysis;
        }
        let data = EventData::Call(Box::new(patch));
        events.insert(
            0,
            src.event(event_type, &payload.event, &call_id, occurred_at, data),
        );
        Ok(events)
    }
}

/// Fields every Vox call event may carry (taken out of `call`).
fn common_patch(call: &mut Call) -> CallPatch {
    let agent = match call.agent.take() {
        Some(agent) => Agent {
            id: agent.agent_id,
            version: version_text(agent.agent_version),
        },
        None => Agent {
            id: call.agent_id.take(),
            version: version_text(call.agent_version.take()),
        },
    };
    CallPatch {
        agent: Some(agent),
        direction: call.call_type.take(),
        from_number: call.from_number.take().or_else(|| call.call_from.take()),
        to_number: call.to_number.take().or_else(|| call.call_to.take()),
        started_at: call.start_at.or(call.start_timestamp),
        dynamic_variables: call.dynamic_variables.take(),
        metadata: call.metadata.take(),
        sensitive_data_opt_out: call.opt_out_sensitive_data_storage,
        ..CallPatch::default()
    }
}

/// Fields of `call_ended` and `call_analyzed` (taken out of `call`).
fn end_fields(call: &mut Call, patch: &mut CallPatch) {
    patch.status = Some(CallStatus::Ended);
    patch.provider_status = call.call_status.take();
    patch.ended_at = call.end_at.or(call.end_timestamp);
    patch.duration_ms = call.duration_ms;
    patch.outcome = call.disconnection_reason.as_deref().map(outcome_of);
    patch.end_reason = call.disconnection_reason.take();
    patch.recording_url = call.recording_url.take();
    // v1 offers the transcript with tool calls separately; it is the more complete one.
    let turns = call
        .transcript_with_tool_calls
        .take()
        .filter(|t| !t.is_empty())
        .or_else(|| call.transcript.take());
    patch.transcript = turns.map(|turns| turns.into_iter().filter_map(turn).collect());
}

/// Cost and analysis (taken out of `call`).
fn analysis_patch(call: &mut Call) -> Option<CallPatch> {
    let cost = call.call_cost.take().and_then(|c| {
        let amount = c.total_cost.or(c.total_credits_used)?;
        // v2's total_cost is the renamed v1 total_credits_used: both are Vox credits.
        Some(Cost {
            amount,
            unit: "credits".to_owned(),
        })
    });
    let analysis = call.call_analysis.take().map(|a| Analysis {
        summary: a.summary,
        sentiment: a.user_sentiment,
        data: a
            .custom_analysis_data
            .into_iter()
            .flatten()
            .map(|item| AnalysisItem {
                name: item.name,
                kind: item
                    .kind
                    .unwrap_or_else(|| json_type(&item.value).to_owned()),
                value: item.value,
            })
            .collect(),
    });
    let analysis = analysis.filter(|a| !a.is_empty());
    (cost.is_some() || analysis.is_some()).then(|| CallPatch {
        cost,
        analysis,
        ..CallPatch::default()
    })
}

fn turn(t: TurnIn) -> Option<Turn> {
    let role = t.role?;
    let content = match (t.content, t.name) {
        (Some(content), _) => content,
        (None, Some(name)) => match t.arguments {
            Some(args) if !args.is_null() => format!("{name}({args})"),
            _ => name,
        },
        (None, None) => return None,
    };
    Some(Turn {
        at: None,
        role,
        content,
    })
}

fn version_text(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
