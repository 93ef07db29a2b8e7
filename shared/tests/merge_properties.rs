//! The merge rules of docs/ARCHITECTURE.md, each proven over generated sets of events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::event::{
    Agent, Analysis, AnalysisItem, CallPatch, CallStatus, CanonicalEvent, Cost, EventData,
    EventType, Turn,
};
use callhook::record::CallRecord;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(String::new())),
        1 => Just(Some("  ".to_owned())),
        4 => select(vec!["a", "b", "inbound", "outbound", "01012345678"]).prop_map(|s| Some(s.to_owned())),
    ]
}

fn millis() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![2 => Just(None), 3 => (1_700_000_000_000i64..1_700_000_100_000).prop_map(Some)]
}

fn turns() -> impl Strategy<Value = Option<Vec<Turn>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(vec![])),
        1 => Just(Some(vec![Turn::new("agent", "")])),
        3 => prop::collection::vec((select(vec!["agent", "user"]), select(vec!["hi", "yes", "bye"])), 1..4)
            .prop_map(|ts| Some(ts.into_iter().map(|(r, c)| Turn::new(r, c)).collect())),
    ]
}

fn object() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Map::new())),
        2 => select(vec![json!({"k": 1}), json!({"k": 2}), json!({"name": "x"})])
            .prop_map(|v| v.as_object().cloned()),
    ]
}

fn patch() -> impl Strategy<Value = CallPatch> {
    let ids = (text(), text(), text(), text(), text(), text(), text());
    let times = (millis(), millis(), millis());
    let status = prop::option::of(select(vec![
        CallStatus::Queued,
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Ended,
    ]));
    let rich = (
        turns(),
        prop::option::of((
            select(vec!["agent", "user"]),
            select(vec!["", "hello", "later"]),
            millis(),
        )),
        prop::option::of(0u32..100),
        prop::option::of(select(vec!["", "good call"])),
        (object(), object(), object()),
        prop::option::of(any::<bool>()),
    );
    (ids, times, status, rich).prop_map(
        |(
            (agent, direction, from, to, outcome, reason, url),
            (start, end, duration),
            status,
            rich,
        )| {
            let (transcript, live, cost, summary, (dynamic, metadata, lead), opt_out) = rich;
            CallPatch {
                agent: agent.map(|id| Agent {
                    id: Some(id),
                    version: None,
                }),
                direction,
                from_number: from,
                to_number: to,
                status,
                provider_status: None,
                outcome,
                started_at: start,
                ended_at: end,
                duration_ms: duration.map(|d| d % 100_000),
                end_reason: reason,
                transcript,
                live_turn: live.map(|(role, content, at)| Turn {
                    at,
                    ..Turn::new(role, content)
                }),
                recording_url: url,
                cost: cost.map(|c| Cost {
                    amount: c.into(),
                    unit: "credits".into(),
                }),
                analysis: summary.map(|s| Analysis {
                    summary: Some(s.to_owned()),
                    sentiment: None,
                    data: vec![AnalysisItem {
                        name: "n".into(),
                        kind: "string".into(),
                        value: json!("v"),
                    }],
                }),
                dynamic_variables: dynamic,
                metadata,
                lead,
                sensitive_data_opt_out: opt_out,
                from_key: None,
                to_key: None,
            }
        },
    )
}

fn event_type() -> impl Strategy<Value = EventType> {
    select(vec![
        EventType::CallStarted,
        EventType::MidCall,
        EventType::CallEnded,
        EventType::CallAnalyzed,
    ])
}

/// Distinct events of one call (distinct dedupe keys, as stored events are).
fn events() -> impl Strategy<Value = Vec<CanonicalEvent>> {
    prop::collection::vec((event_type(), millis(), 0i64..1_000, patch()), 1..8).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (event_type, occurred_at, received, patch))| CanonicalEvent {
                    provider: "vox",
                    event_type,
                    provider_event: event_type.as_str().to_owned(),
                    call_id: "call-1".to_owned(),
                    dedupe_key: format!("{i:032x}"),
                    occurred_at,
                    received_at: 1_800_000_000_000 + received,
                    data: EventData::Call(Box::new(patch)),
                },
            )
            .collect()
    })
}

fn merge_all<'a>(events: impl IntoIterator<Item = &'a CanonicalEvent>) -> CallRecord {
    let mut record = CallRecord::new("vox", "call-1");
    for event in events {
        record.merge(event);
    }
    record
}

fn patch_of(event: &CanonicalEvent) -> &CallPatch {
    match &event.data {
        EventData::Call(p) => p,
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Applying the same event twice changes nothing.
    #[test]
    fn idempotent(events in events(), pick in any::<prop::sample::Index>()) {
        let once = merge_all(&events);
        let repeated = pick.get(&events).clone();
        let mut twice = once.clone();
        twice.merge(&repeated);
        prop_assert_eq!(&twice, &once);
        let all_twice = merge_all(events.iter().chain(events.iter()));
        prop_assert_eq!(all_twice, once);
    }

    /// Every order of a call's events gives the same record.
    #[test]
    fn order_independent(events in events(), seed in any::<u64>()) {
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        prop_assert_eq!(merge_all(&shuffled), merge_all(&events));
    }

    /// A blank or missing value never erases a stored one: an event that says nothing changes
    /// nothing but the bookkeeping of what was seen.
    #[test]
    fn no_blanking(events in events(), blank_type in event_type(), at in millis()) {
        let before = merge_all(&events);
        let blank = CallPatch {
            from_number: Some(String::new()),
            to_number: Some("   ".into()),
            transcript: Some(vec![]),
            recording_url: Some(String::new()),
            dynamic_variables: Some(Map::new()),
            analysis: Some(Analysis::default()),
            ..CallPatch::default()
        };
        let event = CanonicalEvent {
            provider: "vox",
            event_type: blank_type,
            provider_event: "x".into(),
            call_id: "call-1".into(),
            dedupe_key: "f".repeat(32),
            occurred_at: at,
            received_at: 1_800_000_000_500,
            data: EventData::Call(Box::new(blank)),
        };
        let mut after = before.clone();
        after.merge(&event);
        after.events = before.events.clone();
        after.first_event_at = before.first_event_at;
        after.last_event_at = before.last_event_at;
        prop_assert_eq!(after, before.clone());
        // And every field some event gave a value to has a value.
        for e in &events {
            let p = patch_of(e);
            if p.from_number.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                prop_assert!(before.from_number.is_some());
            }
            if p.recording_url.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                prop_assert!(before.recording_url.is_some());
            }
            if p.started_at.is_some() {
                prop_assert!(before.started_at.is_some());
            }
            if p.dynamic_variables.as_ref().is_some_and(|m| !m.is_empty()) {
                prop_assert!(before.dynamic_variables.is_some());
            }
        }
    }

    /// Status never moves backward, whatever arrives next.
    #[test]
    fn status_forward_only(events in events()) {
        let mut record = CallRecord::new("vox", "call-1");
        let mut highest = None;
        for event in &events {
            let previous = record.status;
            record.merge(event);
            prop_assert!(record.status >= previous);
            highest = highest.max(patch_of(event).status);
        }
        prop_assert_eq!(record.status, highest);
    }

    /// A full transcript (call_ended, call_analyzed, Synthflow's completion) is authoritative:
    /// live mid_call turns stand only until one arrives, in either order.
    #[test]
    fn full_transcript_is_authoritative(events in events(), seed in any::<u64>()) {
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        let record = merge_all(&shuffled);
        let full = events
            .iter()
            .filter(|e| patch_of(e).transcript.as_ref().is_some_and(|t| t.iter().any(|t| !t.content.trim().is_empty())))
            .max_by_key(|e| {
                // A live turn's event is ordered by key alone among its kind (see record.rs).
                let at = if e.event_type == EventType::MidCall { 0 } else { e.occurred_at.unwrap_or(0) };
                (e.event_type.rank(), at, e.dedupe_key.clone())
            });
        match full {
            Some(winner) => prop_assert_eq!(Some(&record.transcript), patch_of(winner).transcript.as_ref()),
            None => {
                let mut live: Vec<Turn> = events
                    .iter()
                    .filter_map(|e| patch_of(e).live_turn.clone())
                    .filter(|t| !t.content.trim().is_empty())
                    .collect();
                live.sort();
                live.dedup();
                prop_assert_eq!(record.transcript, live);
            }
        }
    }
}

/// A deterministic Fisher–Yates shuffle driven by a generated seed (xorshift).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[test]
fn duration_is_computed_only_when_the_provider_gives_none() {
    let mut patch = CallPatch {
        started_at: Some(1_000),
        ended_at: Some(40_000),
        ..CallPatch::default()
    };
    let mk = |patch: CallPatch, key: &str, t: EventType| CanonicalEvent {
        provider: "vox",
        event_type: t,
        provider_event: String::new(),
        call_id: "call-1".into(),
        dedupe_key: key.into(),
        occurred_at: None,
        received_at: 0,
        data: EventData::Call(Box::new(patch)),
    };
    let computed = merge_all([&mk(patch.clone(), "a", EventType::CallEnded)]);
    assert_eq!(computed.duration_ms, Some(39_000));
    patch.duration_ms = Some(38_500);
    let given = merge_all([&mk(patch, "a", EventType::CallEnded)]);
    assert_eq!(given.duration_ms, Some(38_500));
}

/// The merge as the calls table keeps it: header, live turns and large values in their own items,
/// merged one event at a time through [`Calls`] on the in-memory table.
mod split {
    use super::*;
    use callhook::store::memory::{MemoryTable, item_size};
    use std::sync::atomic::Ordering;

    /// Makes some of an event's values large enough to leave the header (and, for one, larger
    /// than an item), keeping them deterministic so a redelivery carries the same bytes.
    fn enlarge(event: &mut CanonicalEvent, size: usize) {
        let EventData::Call(patch) = &mut event.data else {
            return;
        };
        if let Some(analysis) = &mut patch.analysis {
            analysis.summary = Some(format!("{}{}", event.dedupe_key, "s".repeat(size)));
        }
        if let Some(metadata) = &mut patch.metadata {
            metadata.insert("blob".into(), json!("m".repeat(size)));
        }
        if let Some(turn) = &mut patch.live_turn {
            turn.content.push_str(&"t".repeat(size / 2));
        }
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    async fn merged(table: &MemoryTable, events: &[CanonicalEvent]) -> CallRecord {
        let calls = calls_on(table);
        for event in events {
            calls.merge(event, None).await.unwrap();
        }
        calls.load("call#vox#call-1").await.unwrap().unwrap().0
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

        /// Stored and read back, the split record is the record the events give in memory, in
        /// any order, with redeliveries and concurrent writers, and no item outgrows 400 KB.
        #[test]
        fn the_split_record_is_the_merged_record(
            mut events in events(),
            seed in any::<u64>(),
            size in prop_oneof![Just(0usize), Just(3_000usize), Just(450_000usize)],
            repeat in any::<prop::sample::Index>(),
            interfere in 0u32..3,
        ) {
            for event in &mut events {
                enlarge(event, size);
            }
            let expected = merge_all(&events);
            let mut delivered = events.clone();
            delivered.push(repeat.get(&events).clone());
            shuffle(&mut delivered, seed);
            let table = MemoryTable::new(MemoryTable::calls_indexes());
            table.interfere.store(interfere, Ordering::SeqCst);
            let record = run(merged(&table, &delivered));
            prop_assert_eq!(record, expected);
            for item in table.items() {
                prop_assert!(item_size(&item) < 400 * 1024, "an item of {} bytes", item_size(&item));
            }
        }
    }

    /// GIVEN a call already holding live turns WHEN more mid_call events arrive THEN each writes
    /// its turn alone, and a redelivery writes nothing.
    #[test]
    fn a_live_turn_costs_its_own_item_and_not_a_header_rewrite() {
        let event = |i: i64| CanonicalEvent {
            provider: "vox",
            event_type: EventType::MidCall,
            provider_event: "mid_call".into(),
            call_id: "call-1".into(),
            dedupe_key: format!("{i:032x}"),
            occurred_at: Some(1_700_000_000_000 + i),
            received_at: 1_800_000_000_000 + i,
            data: EventData::Call(Box::new(CallPatch {
                live_turn: Some(Turn {
                    at: Some(1_700_000_000_000 + i),
                    ..Turn::new("user", format!("turn {i}"))
                }),
                status: Some(CallStatus::InProgress),
                ..CallPatch::default()
            })),
        };
        let events: Vec<CanonicalEvent> = (0..50).map(event).collect();
        let table = MemoryTable::new(MemoryTable::calls_indexes());
        let calls = calls_on(&table);
        run(async {
            let first = calls.merge(&events[0], None).await.unwrap();
            assert!(first.header_written);
            for event in &events[1..] {
                let merged = calls.merge(event, None).await.unwrap();
                assert!(
                    !merged.header_written,
                    "a turn that changes only last_event_at"
                );
                assert_eq!(merged.items_written, 1);
            }
            let items = table.len();
            let again = calls.merge(&events[7], None).await.unwrap();
            assert!(!again.header_written);
            assert_eq!(table.len(), items, "a redelivery adds no item");
            let (record, _) = calls.load("call#vox#call-1").await.unwrap().unwrap();
            assert_eq!(record, merge_all(&events));
            assert_eq!(record.transcript.len(), 50);
            assert_eq!(record.last_event_at, Some(1_800_000_000_049));
        });
    }

    /// GIVEN another writer updating the header between each read and write THEN the merge reads
    /// the item the failed write returns, tries again and lands the event.
    #[test]
    fn a_merge_that_loses_races_retries_on_the_item_it_got_back() {
        let table = MemoryTable::new(MemoryTable::calls_indexes());
        let calls = calls_on(&table);

        run(async {
            calls
                .merge(&outcome_event(EventType::CallStarted, "a", "x"), None)
                .await
                .unwrap();
            table.interfere.store(4, Ordering::SeqCst);
            let merged = calls
                .merge(&outcome_event(EventType::CallEnded, "b", "completed"), None)
                .await
                .unwrap();
            assert_eq!(merged.attempts, 5);
            let (record, version) = calls.load("call#vox#call-1").await.unwrap().unwrap();
            assert_eq!(record.outcome.as_deref(), Some("completed"));
            assert_eq!(version, 6, "four versions by the other writer, then ours");
        });
    }
}

/// A header without a version (written by hand, or by an older callhook) is merged into like any.
#[test]
fn a_header_without_a_version_is_merged_into() {
    use callhook::store::memory::MemoryTable;
    let table = MemoryTable::new(MemoryTable::calls_indexes());
    let calls = calls_on(&table);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        calls
            .merge(&outcome_event(EventType::CallStarted, "a", "x"), None)
            .await
            .unwrap();
        let mut header = table.items().remove(0);
        header.remove("version");
        use callhook::store::dynamo::{Condition, Table};
        table.put(header, Condition::Always).await.unwrap();
        let merged = calls
            .merge(&outcome_event(EventType::CallEnded, "b", "completed"), None)
            .await
            .unwrap();
        assert_eq!(merged.attempts, 1);
        let (record, version) = calls.load("call#vox#call-1").await.unwrap().unwrap();
        assert_eq!(record.outcome.as_deref(), Some("completed"));
        assert_eq!(version, 1);
    });
}

/// A call-1 event of type `t` that says only the call's outcome.
fn outcome_event(t: EventType, key: &str, outcome: &str) -> CanonicalEvent {
    CanonicalEvent {
        provider: "vox",
        event_type: t,
        provider_event: String::new(),
        call_id: "call-1".into(),
        dedupe_key: key.into(),
        occurred_at: None,
        received_at: 5,
        data: EventData::Call(Box::new(CallPatch {
            outcome: Some(outcome.into()),
            ..CallPatch::default()
        })),
    }
}

/// The calls path on an in-memory table (the day markers it has written are remembered across
/// tests: they only spare writes).
fn calls_on(
    table: &callhook::store::memory::MemoryTable,
) -> callhook::store::calls::Calls<'_, &callhook::store::memory::MemoryTable> {
    static DAYS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::LazyLock::new(Default::default);
    callhook::store::calls::Calls {
        table,
        number_key: None,
        days: &DAYS,
    }
}
