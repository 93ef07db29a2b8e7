//! The event path as AWS runs it, on DynamoDB Local: one reader of the stream (the pipe), the bus,
//! the per-type functions invoked asynchronously and concurrently, Lambda's retries, the failure
//! queue and the recorded failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::EventType;
use callhook::bus::CallEventKind;
use callhook::record::CallRecord;
use callhook_e2e::traffic::{Rng, vox_call};
use callhook_e2e::{POISON_BODY, Stack, fixture, raw_event_item, report};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";

/// The record of a call's stored events merged one by one, in order: a clean sequential
/// delivery of the very events the stack received.
async fn sequential_record(stack: &Stack, provider: &str, call_id: &str) -> CallRecord {
    let key = callhook::event::record_key(provider, EventType::CallStarted, call_id);
    let mut events = Vec::new();
    for item in stack.store.events_of(&key).await.unwrap() {
        events.push(
            callhook::rebuild::rebuild(&stack.store, &item)
                .await
                .unwrap(),
        );
    }
    CallRecord::from_events(&events).unwrap()
}

// GIVEN the events of 200 calls (start, live turns, end, analysis), all received
// WHEN the pipe puts them on the bus at once and the per-type functions merge them concurrently
// THEN every record equals its events merged one by one, the races happened and were retried,
// and each call's events for users were put with one stable id per call and kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_calls_merged_by_racing_functions_equal_a_sequential_delivery() {
    let mut stack = Stack::new().await;
    let mut rng = Rng::new(12);
    let calls: Vec<_> = (0..200).map(|i| vox_call(i, 3, &mut rng)).collect();
    let mut sent = 0;
    for event in calls.iter().flatten() {
        assert_eq!(stack.send("vox", &event.body).await.status, 200);
        sent += 1;
    }
    let started = std::time::Instant::now();
    stack.drain().await;
    let elapsed = started.elapsed();
    let stats = stack.runner.stats.clone();
    assert_eq!(
        stats.events, sent,
        "the pipe put every event on the bus once"
    );
    assert!(stack.runner.dead_letters.is_empty());
    assert_eq!(stats.failed, 0);

    let mut expected_ids = BTreeSet::new();
    for call in &calls {
        let id = &call[0].call_id;
        let record = stack.call("vox", id).await.unwrap();
        assert_eq!(record, sequential_record(&stack, "vox", id).await, "{id}");
        let key = callhook::event::record_key("vox", EventType::CallStarted, id);
        let marks = callhook::bus::Marks::of(&record, false);
        for kind in CallEventKind::ALL {
            let holds = match kind {
                CallEventKind::Ended => marks.ended,
                CallEventKind::Analyzed => marks.analyzed,
                CallEventKind::Missed => marks.missed,
            };
            if holds {
                expected_ids.insert(format!("{key}#{}", kind.as_str()));
            }
        }
    }
    let mut put: BTreeMap<String, usize> = BTreeMap::new();
    for event in &stack.runner.published {
        assert_eq!(event.source, "callhook");
        assert!(event.detail.get("transcript").is_none());
        assert!(event.detail.to_string().len() < 256 * 1024);
        assert_eq!(
            event.detail["id"],
            format!(
                "{}#{}",
                event.detail["key"].as_str().unwrap(),
                event.detail_type
            )
        );
        *put.entry(event.detail["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        put.keys().cloned().collect::<BTreeSet<_>>(),
        expected_ids,
        "every call event due, and no other"
    );
    assert!(
        stats.lost_races > 0,
        "no merge ever lost a race: the functions did not run concurrently"
    );
    assert!(stats.peak_concurrency > 1);
    let duplicates: usize = put.values().map(|n| n - 1).sum();
    report(
        "concurrent_functions",
        json!({
            "calls": calls.len(), "events": sent,
            "invocations": stats.invocations, "lost_races_retried": stats.lost_races,
            "peak_concurrency": stats.peak_concurrency,
            "call_events": put.len(), "call_event_duplicates": duplicates,
            "seconds": elapsed.as_secs_f64(),
        }),
    );
}

/// The messages on the local failure queue.
async fn queued(stack: &Stack) -> Vec<Value> {
    stack
        .store
        .local_failure_queue()
        .await
        .unwrap()
        .iter()
        .map(|item| serde_json::from_str(&item.message).unwrap())
        .collect()
}

// GIVEN the calls table unreachable for the functions
// WHEN a call's events arrive
// THEN each invocation is retried as Lambda retries it, then its invocation record, with the
// event's keys, is on the failure queue; nothing is recorded as permanent
#[tokio::test]
async fn a_transient_failure_is_retried_then_queued_with_its_keys() {
    let mut stack = Stack::new().await;
    stack.faults.calls_table.store(true, Ordering::Relaxed);
    stack.send_fixture("vox", "v2_call_started").await;
    stack.send_fixture("vox", "v2_call_ended").await;
    stack.drain().await;

    let retries = stack.runner.rules()[0].maximum_retry_attempts as usize;
    assert_eq!(stack.runner.stats.invocations, 2 * (1 + retries));
    let letters = &stack.runner.dead_letters;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| l.enqueued));
    let messages = queued(&stack).await;
    assert_eq!(messages.len(), 2);
    let mut functions = BTreeSet::new();
    for message in &messages {
        assert_eq!(message["requestContext"]["condition"], "RetriesExhausted");
        let detail = &message["requestPayload"]["detail"];
        assert_eq!(detail["pk"], format!("call#vox#{VOX_CALL}"));
        assert!(detail["sk"].as_str().unwrap().starts_with("ev#"));
        functions.insert(message["requestPayload"]["detail-type"].to_string());
    }
    assert_eq!(functions.len(), 2);
    let recorded = stack.store.failures().await.unwrap().len();
    assert_eq!(recorded, 0);
    assert!(stack.call("vox", VOX_CALL).await.is_none());
    report(
        "transient_failure",
        json!({
            "events": 2, "invocations": stack.runner.stats.invocations, "retries_each": retries,
            "queued": messages.len(), "recorded": recorded,
        }),
    );
}

// GIVEN an event that can never merge, and its failure record that cannot be written
// WHEN the function meets it
// THEN it is not dropped: the invocation fails, is retried, and lands on the failure queue
#[tokio::test]
async fn a_permanent_failure_that_cannot_be_recorded_is_retried_and_queued() {
    let mut stack = Stack::new().await;
    stack.faults.failure_records.store(true, Ordering::Relaxed);
    stack
        .store_raw(&raw_event_item("poison", "ev#0001", POISON_BODY))
        .await;
    stack.drain().await;
    assert!(stack.store.failures().await.unwrap().is_empty());
    let messages = queued(&stack).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["requestPayload"]["detail"]["pk"],
        "call#vox#poison"
    );
    assert!(
        messages[0]["responsePayload"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("dispatch failure")
    );
}

// GIVEN DynamoDB down for the functions and the local queue alike, while events are in flight
// WHEN their invocations fail and their retries run out
// THEN the letters wait, and are on the queue once DynamoDB is back: nothing is lost
#[tokio::test]
async fn an_outage_while_failing_loses_nothing() {
    let mut stack = Stack::new().await;
    stack
        .store_raw(&raw_event_item("poison", "ev#0002", POISON_BODY))
        .await;
    stack.send("vox", &fixture("vox", "v2_call_ended")).await;
    // The pipe reads both and starts their invocations; on this one-thread runtime none has
    // run yet when DynamoDB goes down.
    stack.runner.poll(&stack.config).await.unwrap();
    stack.faults.everything.store(true, Ordering::Relaxed);
    assert!(stack.runner.drain(&stack.config).await.is_err());
    assert_eq!(stack.runner.dead_letters.len(), 2);
    assert!(stack.runner.dead_letters.iter().all(|l| !l.enqueued));
    let waiting = stack.runner.dead_letters.len();
    stack.faults.everything.store(false, Ordering::Relaxed);
    stack.drain().await;
    assert!(stack.runner.dead_letters.iter().all(|l| l.enqueued));
    let keys: BTreeSet<String> = queued(&stack)
        .await
        .iter()
        .map(|m| {
            m["requestPayload"]["detail"]["pk"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["call#vox#poison".to_owned(), format!("call#vox#{VOX_CALL}")])
    );
    report(
        "outage_while_failing",
        json!({"events": 2, "letters_waiting": waiting, "queued_after": keys.len(), "lost": 2 - keys.len()}),
    );
}

/// The `(path, value)` of the template's permanent-failure metric filters
/// (`{ $.fields.outcome = "failed" }`), the same for every function's log group.
fn permanent_failure_filter() -> (Vec<String>, String) {
    let template = callhook_local::template::template().unwrap();
    let patterns: BTreeSet<String> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
        .map(|r| {
            r["Properties"]["FilterPattern"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(patterns.len(), 1, "{patterns:?}");
    let pattern = patterns.into_iter().next().unwrap();
    let inner = pattern
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    let (path, value) = inner.split_once('=').unwrap();
    let path = path.trim().strip_prefix("$.").unwrap();
    (
        path.split('.').map(str::to_owned).collect(),
        value.trim().trim_matches('"').to_owned(),
    )
}

// GIVEN the template's metric filter that counts permanent failures in the functions' logs
// WHEN a function records a permanent failure
// THEN the line it logs is one the filter counts, once; a merged event's line is not counted
#[tokio::test]
async fn the_permanent_failures_metric_counts_what_the_functions_log() {
    callhook_e2e::logs::capture();
    let mut stack = Stack::new().await;
    stack
        .store_raw(&raw_event_item("poison-logged", "ev#0003", POISON_BODY))
        .await;
    stack.send_fixture("vox", "v2_call_ended").await;
    stack.drain().await;
    let (path, value) = permanent_failure_filter();
    let counted: Vec<Value> = callhook_e2e::logs::captured()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            path.iter()
                .try_fold(line, |v, key| v.get(key))
                .and_then(Value::as_str)
                == Some(value.as_str())
        })
        .collect();
    assert_eq!(counted.len(), 1, "{counted:#?}");
    assert_eq!(counted[0]["fields"]["pk"], "call#vox#poison-logged");
    assert_eq!(counted[0]["level"], "ERROR");
}
