//! Generated webhook traffic for the reliability suites: calls of every provider, each a list of
//! events in their natural order, deterministic for a seed.

use serde_json::{Value, json};

/// One webhook body of a generated call.
#[derive(Debug, Clone)]
pub struct Event {
    pub provider: &'static str,
    pub call_id: String,
    pub body: Vec<u8>,
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// `calls` calls over Vox, ClawOps and Synthflow in turn, with `events` events in all (Vox calls
/// take the events beyond each provider's fixed lifecycle as `mid_call` turns).
pub fn calls(calls: usize, events: usize, seed: u64) -> Vec<Vec<Event>> {
    let mut rng = Rng::new(seed);
    let vox_calls = calls.div_ceil(3);
    let fixed: usize = (0..calls).map(|i| [3, 4, 1][i % 3]).sum();
    assert!(
        events >= fixed,
        "{calls} calls need at least {fixed} events"
    );
    let extra = events - fixed;
    (0..calls)
        .map(|i| {
            let turns = extra.checked_div(vox_calls).unwrap_or(0)
                + usize::from(i / 3 < extra.checked_rem(vox_calls).unwrap_or(0));
            match i % 3 {
                0 => vox_call(i, turns, &mut rng),
                1 => clawops_call(i, &mut rng),
                _ => synthflow_call(i, &mut rng),
            }
        })
        .collect()
}

fn event(provider: &'static str, call_id: &str, body: &Value) -> Event {
    Event {
        provider,
        call_id: call_id.to_owned(),
        body: serde_json::to_vec(body).unwrap(),
    }
}

const START: i64 = 1_780_000_000_000;

fn number(rng: &mut Rng) -> String {
    format!("010{:08}", rng.below(100_000_000))
}

/// A Vox v2 call: call_started, `turns` mid_call turns, call_ended, call_analyzed.
pub fn vox_call(i: usize, turns: usize, rng: &mut Rng) -> Vec<Event> {
    let id = format!("vox-gen-{i:05}-{:08x}", rng.next_u64() as u32);
    let start = START + i as i64 * 60_000;
    let end = start + 5_000 + rng.below(600_000) as i64;
    let agent = json!({"agent_id": format!("agent-{}", rng.below(7)), "agent_version": "v3"});
    let (from, to) = (number(rng), number(rng));
    let direction = if rng.below(2) == 0 {
        "inbound"
    } else {
        "outbound"
    };
    let transcript: Vec<Value> = (0..turns.max(2))
        .map(|t| json!({"role": if t % 2 == 0 { "agent" } else { "user" }, "content": format!("turn {t} of {id}")}))
        .collect();
    let common = json!({
        "call_id": id, "agent": agent, "call_type": direction,
        "from_number": from, "to_number": to,
        "dynamic_variables": {"customer": format!("c{i}")}, "metadata": {"batch": i % 5},
        "start_at": start, "opt_out_sensitive_data_storage": false,
    });
    let mut out = vec![event(
        "vox",
        &id,
        &json!({"event": "call_started", "webhook_version": "v2", "call": common}),
    )];
    for t in 0..turns {
        out.push(event("vox", &id, &json!({
            "event": "mid_call", "webhook_version": "v2",
            "call": {
                "call_id": id, "agent": agent, "occurred_at": start + 1_000 * (t as i64 + 1),
                "event_type": "call_message",
                "event_data": {"role": if t % 2 == 0 { "agent" } else { "user" }, "content": format!("live {t} of {id}")},
            },
        })));
    }
    let mut ended = common.clone();
    ended["call_status"] = json!("ended");
    let reason = ["user_hangup", "agent_hangup", "dial_no_answer"][rng.below(3)];
    ended["disconnection_reason"] = json!(reason);
    ended["end_at"] = json!(end);
    ended["transcript"] = json!(transcript);
    ended["recording_url"] = json!(format!("https://recordings.example/{id}.ogg"));
    out.push(event(
        "vox",
        &id,
        &json!({"event": "call_ended", "webhook_version": "v2", "call": ended}),
    ));
    let mut analyzed = ended;
    analyzed["call_cost"] = json!({"total_cost": rng.below(500)});
    let sentiment = ["positive", "neutral", "negative"][rng.below(3)];
    analyzed["call_analysis"] = json!({
        "summary": format!("summary of {id}"),
        "user_sentiment": sentiment,
        "custom_analysis_data": [{"type": "number", "name": "score", "value": rng.below(10)}],
    });
    out.push(event(
        "vox",
        &id,
        &json!({"event": "call_analyzed", "webhook_version": "v2", "call": analyzed}),
    ));
    out
}

/// A ClawOps call: initiated, ringing, answered, completed.
pub fn clawops_call(i: usize, rng: &mut Rng) -> Vec<Event> {
    let id = format!("CAgen{i:05}{:08x}", rng.next_u64() as u32);
    let (from, to) = (number(rng), number(rng));
    let direction = if rng.below(2) == 0 {
        "inbound"
    } else {
        "outbound"
    };
    let start = (START / 1000) + i as i64 * 60;
    let duration = rng.below(900) as i64;
    ["initiated", "ringing", "answered", "completed"]
        .iter()
        .enumerate()
        .map(|(step, status)| {
            let mut body = json!({
                "event": format!("call.{status}"), "call_id": id, "status": status,
                "direction": direction, "from": from, "to": to,
                "duration": if *status == "completed" { duration } else { 0 },
                "created_at": start + step as i64 * 2 + if *status == "completed" { duration } else { 0 },
            });
            if step == 3 && rng.below(2) == 0 {
                // ClawOps' completion event sometimes comes without its `event` name.
                body.as_object_mut().unwrap().remove("event");
            }
            event("clawops", &id, &body)
        })
        .collect()
}

/// A Synthflow call: its one completion webhook.
pub fn synthflow_call(i: usize, rng: &mut Rng) -> Vec<Event> {
    let id = format!(
        "{}x{:015}",
        1_711_646_262_471u64 + i as u64,
        rng.below(1_000_000_000)
    );
    let body = json!({
        "status": "completed",
        "lead": {"name": format!("Lead {i}"), "phone_number": format!("+1{:010}", rng.below(1_000_000_000))},
        "call": {
            "status": "completed", "end_call_reason": "completed",
            "model_id": format!("model-{}", rng.below(4)), "timezone": "Europe/Berlin",
            "call_id": id, "duration": rng.below(600),
            "start_time": "2026-06-01T10:00:00.000000+02:00",
            "transcript": format!("bot: Hello from call {i}.\nhuman: Hi.\nbot: Goodbye."),
        },
        "executed_actions": {"extract": {"name": "extract", "return_value": {"n": i}}},
    });
    vec![event("synthflow", &id, &body)]
}

/// The body (JSON, or a form) with every string equal to `from` replaced by `to` (a call id,
/// for instance).
pub fn rename(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    fn walk(value: &mut Value, from: &str, to: &str) {
        match value {
            Value::String(s) if s == from => *s = to.to_owned(),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, from, to)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, from, to)),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        // A form body (Twilio's): the same for each field's value.
        let fields = callhook::provider::form_fields(body).unwrap();
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(&name, if value == from { to } else { &value });
        }
        return form.finish().into_bytes();
    };
    walk(&mut value, from, to);
    serde_json::to_vec(&value).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_numbers_of_calls_and_events() {
        let generated = calls(400, 2_000, 7);
        assert_eq!(generated.len(), 400);
        assert_eq!(generated.iter().map(Vec::len).sum::<usize>(), 2_000);
        let ids: std::collections::HashSet<&str> =
            generated.iter().map(|c| c[0].call_id.as_str()).collect();
        assert_eq!(ids.len(), 400);
        // Deterministic for a seed.
        assert_eq!(calls(9, 40, 1)[4][0].body, calls(9, 40, 1)[4][0].body);
    }
}
