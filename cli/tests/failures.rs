//! `callhook failures list|replay` on DynamoDB Local, against a stack whose functions met both
//! kinds of failure: one recorded (it can never merge as stored), two queued (their retries ran
//! out while the calls table was unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook_e2e::{POISON_BODY, Stack, fixture, raw_event_item};
use serde_json::Value;
use std::sync::atomic::Ordering;

const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";

mod common;

/// `callhook ARGS` on the stack's tables: exit status and stdout.
fn callhook(stack: &Stack, args: &[&str]) -> (i32, String) {
    let out = common::run(stack, args);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn listed(stack: &Stack) -> Vec<Value> {
    let (status, out) = callhook(stack, &["failures", "list", "--json"]);
    assert_eq!(status, 0);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_of_both_kinds_are_listed_and_replayed() {
    let mut stack = Stack::new().await;
    // GIVEN an event whose stored body no longer parses (permanent)
    stack
        .store_raw(&raw_event_item("poison", "ev#0001", POISON_BODY))
        .await;
    stack.drain().await;
    // AND a call whose events met the calls table unreachable (transient, retries exhausted)
    stack.faults.calls_table.store(true, Ordering::Relaxed);
    stack.send_fixture("vox", "v2_call_started").await;
    stack.send_fixture("vox", "v2_call_ended").await;
    stack.drain().await;
    stack.faults.calls_table.store(false, Ordering::Relaxed);

    // WHEN they are listed
    let failures = listed(&stack);
    // THEN both kinds are there, newest first, each with its function, event and reason
    assert_eq!(failures.len(), 3, "{failures:#?}");
    let kinds: Vec<&str> = failures
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["queued", "queued", "recorded"]);
    let at: Vec<i64> = failures.iter().map(|f| f["at"].as_i64().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    let recorded = &failures[2];
    assert_eq!(recorded["function"], "call-ended");
    assert_eq!(recorded["record"], "call#vox#poison");
    assert_eq!(recorded["event"]["sk"], "ev#0001");
    assert!(!recorded["reason"].as_str().unwrap().is_empty());
    for queued in &failures[..2] {
        assert_eq!(queued["record"], format!("call#vox#{VOX_CALL}"));
        assert!(
            queued["reason"]
                .as_str()
                .unwrap()
                .contains("dispatch failure")
        );
    }
    let (status, table) = callhook(&stack, &["failures", "list"]);
    assert_eq!(status, 0);
    assert!(table.starts_with("WHEN (UTC)") && table.contains("call#vox#poison"));

    // WHEN every failure is replayed, storage being back
    let (status, out) = callhook(&stack, &["failures", "replay", "--all", "--json"]);
    // THEN the queued ones merge and are removed; the permanent one fails again and is kept
    assert_eq!(status, 1, "{out}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["replayed"].as_array().unwrap().len(), 2);
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1);
    let record = stack.call("vox", VOX_CALL).await.unwrap();
    assert_eq!(record.events.len(), 2);
    let left = listed(&stack);
    assert_eq!(left.len(), 1);
    let id = left[0]["id"].as_str().unwrap().to_owned();

    // WHEN the event is fixed (as a parser fix would) and that failure replayed by its id
    let mut body: Value = serde_json::from_slice(&fixture("vox", "v2_call_ended")).unwrap();
    body["call"]["call_id"] = "poison".into();
    stack
        .store_raw(&raw_event_item("poison", "ev#0001", &body.to_string()))
        .await;
    let (status, out) = callhook(&stack, &["failures", "replay", &id]);
    // THEN it merges and nothing is left
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("Replayed 1 of 1"));
    assert!(
        stack
            .call("vox", "poison")
            .await
            .unwrap()
            .ended_at
            .is_some()
    );
    assert!(listed(&stack).is_empty());

    // AND an unknown id is "not found"
    let (status, _) = callhook(&stack, &["failures", "replay", "f#nope"]);
    assert_eq!(status, 3);
}
