//! Records larger than any DynamoDB item, end to end: delivered through the ingest handler,
//! merged by the functions on DynamoDB Local, then read back by `callhook calls show` and
//! `callhook export` against the stack's tables, as a user of a deployed stack would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::store::memory::item_size;
use callhook_e2e::Stack;
use callhook_e2e::traffic::{Rng, vox_call};
use serde_json::{Value, json};

mod common;

/// `callhook ARGS` on the stack's tables; its stdout, which must be a success's.
fn callhook(stack: &Stack, args: &[&str]) -> String {
    let out = common::run(stack, args);
    assert!(
        out.status.success(),
        "callhook {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn show(stack: &Stack, call_id: &str) -> Value {
    serde_json::from_str(&callhook(
        stack,
        &["calls", "show", "vox", call_id, "--json"],
    ))
    .unwrap()
}

fn exported(stack: &Stack, call_id: &str) -> Value {
    callhook(stack, &["export", "--provider", "vox", "--format", "jsonl"])
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|record| record["call_id"] == call_id)
        .unwrap()
}

/// Delivers bodies as a provider does, several at once, each answered 2xx.
async fn deliver(stack: &Stack, bodies: &[Vec<u8>]) {
    use futures_util::StreamExt;
    let replies: Vec<_> = futures_util::stream::iter(bodies)
        .map(|body| stack.send("vox", body))
        .buffer_unordered(16)
        .collect()
        .await;
    for reply in replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

/// Every item of the calls table fits DynamoDB's limit with room to spare.
async fn assert_items_fit(stack: &Stack) {
    for item in stack.call_items().await {
        assert!(
            item_size(&item) < 400 * 1024,
            "an item of {} bytes",
            item_size(&item)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_larger_than_an_item_are_kept_whole_and_read_back_by_the_cli() {
    let mut stack = Stack::new().await;
    let mut rng = Rng::new(11);

    // GIVEN a call with 5,000 live turns and no full transcript (yet)
    let events = vox_call(1, 5_000, &mut rng);
    let id = events[0].call_id.clone();
    let (started, rest) = events.split_first().unwrap();
    let (live, finals) = rest.split_at(5_000);
    deliver(&stack, std::slice::from_ref(&started.body)).await;
    let bodies: Vec<Vec<u8>> = live.iter().map(|e| e.body.clone()).collect();
    deliver(&stack, &bodies).await;
    stack.drain().await;
    // THEN every turn is in the record, in order, as `calls show` and `export` print it
    let record = show(&stack, &id);
    let transcript = record["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 5_000);
    assert_eq!(transcript[0]["content"], format!("live 0 of {id}"));
    assert_eq!(transcript[4_999]["content"], format!("live 4999 of {id}"));
    assert_eq!(exported(&stack, &id), record);
    assert_eq!(
        stack.call("vox", &id).await.unwrap().to_contract_json(),
        record
    );
    assert_items_fit(&stack).await;

    // WHEN the full transcript arrives (call_ended), then the analysis
    let finals: Vec<Vec<u8>> = finals.iter().map(|e| e.body.clone()).collect();
    deliver(&stack, &finals).await;
    stack.drain().await;
    // THEN it replaces the live turns, and the record is whole
    let record = show(&stack, &id);
    let transcript = record["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 5_000);
    assert_eq!(transcript[0]["content"], format!("turn 0 of {id}"));
    assert_eq!(record["status"], "ended");
    assert!(record["analysis"]["summary"].is_string());
    assert_eq!(exported(&stack, &id), record);

    // WHEN its events expire (TTL deletes them from the events table)
    let client = stack.store.client().clone();
    for item in stack.event_items().await {
        client
            .delete_item()
            .table_name(&stack.config.events_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(item.pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(item.sk))
            .send()
            .await
            .unwrap();
    }
    // THEN the record reads back all the same: it never points at an event
    assert_eq!(show(&stack, &id), record);
    assert_eq!(exported(&stack, &id), record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_kb_summary_and_1_mb_of_metadata_are_kept_whole() {
    let mut stack = Stack::new().await;
    // GIVEN a call_started with 1 MB of metadata and a call_analyzed with a 500 KB summary
    let id = "large-values-1";
    let metadata: serde_json::Map<String, Value> = (0..1_000)
        .map(|i| {
            (
                format!("key{i:04}"),
                json!(format!("{i:04}-{}", "m".repeat(1_040))),
            )
        })
        .collect();
    let started = json!({"event": "call_started", "webhook_version": "v2", "call": {
        "call_id": id, "call_type": "inbound", "from_number": "+15550100", "to_number": "+15550199",
        "start_at": 1_780_000_000_000i64, "metadata": metadata,
    }});
    let summary = "The caller asked about an order. ".repeat(16_000);
    let analyzed = json!({"event": "call_analyzed", "webhook_version": "v2", "call": {
        "call_id": id, "call_status": "ended", "start_at": 1_780_000_000_000i64,
        "end_at": 1_780_000_060_000i64,
        "call_analysis": {"summary": summary, "user_sentiment": "neutral"},
    }});
    let bodies = [started, analyzed].map(|b| serde_json::to_vec(&b).unwrap());
    assert!(bodies[0].len() > 1_000_000 && bodies[1].len() > 500_000);
    deliver(&stack, &bodies).await;
    stack.drain().await;
    assert!(stack.runner.dead_letters.is_empty());
    // THEN both read back whole, through the CLI and the export
    let record = show(&stack, id);
    assert_eq!(record["metadata"], Value::Object(metadata));
    assert_eq!(record["analysis"]["summary"], summary);
    assert_eq!(exported(&stack, id), record);
    assert_items_fit(&stack).await;
    // AND the listing (which reads the index projection only) finds the call
    let listed: Value =
        serde_json::from_str(&callhook(&stack, &["calls", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["call_id"], id);
}
