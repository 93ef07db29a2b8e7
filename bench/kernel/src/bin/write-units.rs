//! Write units of one long call, stored as callhook stores it: a Vox v2 call with 400 live turns
//! (`mid_call`), then its full transcript (`call_ended`), then its analysis (`call_analyzed`).
//! The events table's writes are the items ingest puts for each delivery; the calls table's are
//! what the merges write, on the in-memory table that bills as DynamoDB does (item size rounded
//! up to 1 KB, index entries whose key or projection changes). Prints one JSON object.
//!
//!     cargo run --release -p callhook-bench --bin write-units [-- TURNS]
#![forbid(unsafe_code)]

use callhook::event::DeliveryContext;
use callhook::store::EventItems;
use callhook::store::calls::Calls;
use callhook::store::memory::{MemoryTable, item_size};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

const START: i64 = 1_780_000_000_000;

fn bodies(turns: usize) -> Vec<(&'static str, Value)> {
    let id = "write-units-call";
    let agent = json!({"agent_id": "agent-1", "agent_version": "v3"});
    let common = json!({
        "call_id": id, "agent": agent, "call_type": "inbound",
        "from_number": "+15550100", "to_number": "+15550199",
        "dynamic_variables": {"customer": "c1"}, "metadata": {"batch": 1},
        "start_at": START, "opt_out_sensitive_data_storage": false,
    });
    let line = |t: usize| {
        format!(
            "turn {t}: a sentence of the length people speak on the phone, about the order {t}."
        )
    };
    let role = |t: usize| if t % 2 == 0 { "agent" } else { "user" };
    let mut out = vec![(
        "started",
        json!({"event": "call_started", "webhook_version": "v2", "call": common}),
    )];
    for t in 0..turns {
        out.push((
            "live",
            json!({
                "event": "mid_call", "webhook_version": "v2",
                "call": {
                    "call_id": id, "agent": agent, "occurred_at": START + 1_000 * (t as i64 + 1),
                    "event_type": "call_message",
                    "event_data": {"role": role(t), "content": line(t)},
                },
            }),
        ));
    }
    let mut ended = common.clone();
    ended["call_status"] = json!("ended");
    ended["end_at"] = json!(START + 1_000 * (turns as i64 + 2));
    ended["disconnection_reason"] = json!("user_hangup");
    ended["transcript"] = Value::Array(
        (0..turns)
            .map(|t| json!({"role": role(t), "content": line(t)}))
            .collect(),
    );
    ended["recording_url"] = json!("https://recordings.example/write-units.ogg");
    out.push((
        "full",
        json!({"event": "call_ended", "webhook_version": "v2", "call": ended}),
    ));
    let mut analyzed = ended;
    analyzed["call_cost"] = json!({"total_cost": 42});
    analyzed["call_analysis"] = json!({
        "summary": "The caller asked where the order was; the agent gave the delivery date.",
        "user_sentiment": "positive",
        "custom_analysis_data": [{"type": "number", "name": "score", "value": 8}],
    });
    out.push((
        "analysis",
        json!({"event": "call_analyzed", "webhook_version": "v2", "call": analyzed}),
    ));
    out
}

fn units(size: usize) -> u64 {
    u64::try_from(size.div_ceil(1024).max(1)).unwrap_or(u64::MAX)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let turns: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(400);
    let vox = callhook::provider::lookup("vox").ok_or("no vox provider")?;
    let table = MemoryTable::new(MemoryTable::calls_indexes());
    let days = Mutex::new(HashSet::new());
    let calls = Calls {
        table: &table,
        number_key: None,
        days: &days,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut phases: Vec<(&str, u64, u64, usize)> = Vec::new();
    let mut headers_written = 0;
    // The layout this one replaced, for comparison: the whole record in one item, rewritten by
    // every merge that changed it, and copied whole into four indexes that projected everything.
    let mut single_item_units = 0u64;
    let mut single = callhook::CallRecord::new("vox", "write-units-call");
    for (i, (phase, body)) in bodies(turns).into_iter().enumerate() {
        let body = serde_json::to_vec(&body)?;
        let ctx = DeliveryContext {
            received_at: START + i as i64,
            delivery_id: None,
        };
        let events = vox.parse(&body, &ctx)?;
        let event_units: u64 = EventItems::for_delivery(&events, &body, None)?
            .to_attributes()?
            .iter()
            .map(|item| units(item_size(item)))
            .sum();
        let before = table.write_units.load(Ordering::Relaxed);
        for event in &events {
            let merged = runtime.block_on(calls.merge(event, None))?;
            headers_written += usize::from(merged.header_written);
            let before = single.clone();
            single.merge(event);
            if single != before {
                let size = item_size(&callhook::store::to_attributes(&single)?);
                single_item_units += 5 * units(size);
            }
        }
        let call_units = table.write_units.load(Ordering::Relaxed) - before;
        match phases.iter_mut().find(|p| p.0 == phase) {
            Some(p) => {
                p.1 += event_units;
                p.2 += call_units;
                p.3 += 1;
            }
            None => phases.push((phase, event_units, call_units, 1)),
        }
    }
    let events_total: u64 = phases.iter().map(|p| p.1).sum();
    let calls_total: u64 = phases.iter().map(|p| p.2).sum();
    let largest = table.items().iter().map(item_size).max().unwrap_or(0);
    let out = json!({
        "turns": turns,
        "events_write_units": events_total,
        "calls_write_units": calls_total,
        "calls_index_write_units": table.index_write_units.load(Ordering::Relaxed),
        "ratio": calls_total as f64 / events_total.max(1) as f64,
        "single_item_layout_write_units": single_item_units,
        "headers_written": headers_written,
        "calls_items": table.len(),
        "largest_item_bytes": largest,
        "phases": phases.iter().map(|(name, e, c, n)| json!({
            "phase": name, "deliveries": n, "events_write_units": e, "calls_write_units": c,
        })).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
