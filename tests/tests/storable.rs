//! Values JSON allows and DynamoDB refuses, end to end on DynamoDB Local: each is delivered as a
//! signed webhook, answered, merged, and read back from the calls table as its JSON text; an id
//! too long for a key is refused and quarantined.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use callhook::storable::{self, ATTRIBUTE_LEVEL};
use callhook::store::TYPE_QUARANTINE;
use callhook_e2e::*;
use serde_json::{Map, Number, Value, json};

/// `{"a": {"a": … leaf}}` with `depth` maps.
fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, _| json!({ "a": inner }))
}

/// The number of maps above the first value that is not one, and that value.
fn descend(mut value: &Value) -> (usize, &Value) {
    let mut maps = 0;
    while let Some(inner) = value.get("a") {
        maps += 1;
        value = inner;
    }
    (maps, value)
}

/// A Vox v2 `call_started` carrying these opaque fields.
fn vox_started(call_id: &str, metadata: Value, dynamic_variables: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": "call_started",
        "webhook_version": "v2",
        "call": {
            "call_id": call_id,
            "call_type": "inbound",
            "start_at": 1_741_842_354_957_i64,
            "metadata": metadata,
            "dynamic_variables": dynamic_variables,
        }
    }))
    .unwrap()
}

fn object(value: &Option<Map<String, Value>>) -> Value {
    Value::Object(value.clone().expect("the field was stored"))
}

/// Sends, expects 200, and runs the functions.
async fn deliver(stack: &mut Stack, provider: &str, body: &[u8]) {
    let reply = stack.send(provider, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["received"], true);
    stack.drain().await;
    assert!(
        stack.runner.dead_letters.is_empty(),
        "{:?}",
        stack.runner.dead_letters
    );
}

#[tokio::test]
async fn metadata_nested_35_deep_is_stored_with_its_overflow_kept_as_json_text() {
    let mut stack = Stack::new().await;
    // GIVEN metadata nested 35 maps deep, next to one exactly as deep as DynamoDB allows
    let deep = nested(35, json!("leaf"));
    let fits = nested(29, json!({}));
    let body = vox_started(
        "deep-metadata",
        json!({"deep": deep, "fits": fits}),
        json!({}),
    );
    // WHEN it is delivered and merged
    deliver(&mut stack, "vox", &body).await;
    // THEN the record holds maps down to level 32 and, at level 33, the rest as its JSON text
    let record = stack.call("vox", "deep-metadata").await.unwrap();
    let metadata = object(&record.metadata);
    let (maps, rest) = descend(&metadata["deep"]);
    assert_eq!(maps, 30, "levels 3 to 32 of the item");
    let text = rest.as_str().expect("the overflow is text");
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        nested(5, json!("leaf"))
    );
    assert_eq!(metadata["fits"], fits, "what fits is stored as sent");
    // AND the events table keeps the body byte for byte
    let items = stack.event_items().await;
    let item = items.iter().find(|i| i.call_id == "deep-metadata").unwrap();
    assert_eq!(stack.store.load_body(item).await.unwrap(), body);
    assert_eq!(item.body_bytes, Some(body.len() as u64));
    // AND an item stored before sizes were recorded has its size read from its body
    stack
        .store
        .client()
        .update_item()
        .table_name(&stack.store.events_table)
        .key("pk", AttributeValue::S(item.pk.clone()))
        .key("sk", AttributeValue::S(item.sk.clone()))
        .update_expression("REMOVE body_bytes")
        .send()
        .await
        .unwrap();
    let headers = stack.store.event_headers(&item.pk).await.unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!((headers[0].body_bytes, &headers[0].body), (None, &None));
    assert_eq!(
        stack.store.body_size(&headers[0]).await.unwrap(),
        body.len() as u64
    );
}

#[tokio::test]
async fn numbers_beyond_dynamodb_range_in_metadata_and_dynamic_variables_are_kept_as_text() {
    let mut stack = Stack::new().await;
    let body = vox_started(
        "big-numbers",
        json!({"big": 1e300, "tiny": 1e-200, "in_range": 1e125, "list": [1, -1e300]}),
        json!({"big": -1e300, "count": 42}),
    );
    deliver(&mut stack, "vox", &body).await;
    let record = stack.call("vox", "big-numbers").await.unwrap();
    assert_eq!(
        object(&record.metadata),
        json!({"big": "1e300", "tiny": "1e-200", "in_range": 1e125, "list": [1, "-1e300"]})
    );
    assert_eq!(
        object(&record.dynamic_variables),
        json!({"big": "-1e300", "count": 42})
    );
}

#[tokio::test]
async fn an_empty_key_is_kept_as_json_text() {
    let mut stack = Stack::new().await;
    let body = vox_started(
        "empty-key",
        json!({"": "at the top", "nested": {"": 1, "b": 2}, "plain": {"c": 3}}),
        json!({"": true}),
    );
    deliver(&mut stack, "vox", &body).await;
    let record = stack.call("vox", "empty-key").await.unwrap();
    assert_eq!(
        object(&record.metadata),
        json!({"\"\"": "at the top", "nested": "{\"\":1,\"b\":2}", "plain": {"c": 3}})
    );
    assert_eq!(object(&record.dynamic_variables), json!({"\"\"": true}));
}

#[tokio::test]
async fn a_call_id_too_long_for_a_key_is_refused_and_quarantined() {
    let mut stack = Stack::new().await;
    let call_id = "c".repeat(2000);
    let body = vox_started(&call_id, json!({}), json!({}));
    // WHEN a call id of 2,000 bytes is delivered
    let reply = stack.send("vox", &body).await;
    // THEN it is refused as unusable, with one sentence that names the limit
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["error"], "unusable_payload");
    assert_eq!(
        reply.body["message"],
        "The call id is 2000 bytes long, more than the 1024 bytes a record key can hold."
    );
    // AND the body is kept in quarantine only
    stack.drain().await;
    let items = stack.event_items().await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].kind, TYPE_QUARANTINE);
    assert_eq!(stack.store.load_body(&items[0]).await.unwrap(), body);
    assert!(stack.call_items().await.is_empty());
    // A message id too long is refused the same way.
    let message = serde_json::to_vec(&json!({
        "event": "message.received", "message_id": "m".repeat(1025), "from": "01012345678", "body": "hi"
    }))
    .unwrap();
    let reply = stack.send("clawops", &message).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("The message id is 1025 bytes long")
    );
}

#[tokio::test]
async fn analysis_values_leads_and_message_fields_are_kept_as_json_text_too() {
    let mut stack = Stack::new().await;
    // Synthflow: a lead and an action's return values (analysis.data[i].value, level 5).
    let synthflow = serde_json::to_vec(&json!({
        "status": "completed",
        "lead": {"name": "Ada", "score": 1e300, "": "x", "deep": nested(35, json!(1))},
        "call": {"call_id": "sf-storable", "status": "completed", "duration": 10},
        "executed_actions": {"qualify": {"return_value": {"deep": nested(35, json!(1)), "big": 1e300}}}
    }))
    .unwrap();
    deliver(&mut stack, "synthflow", &synthflow).await;
    let record = stack.call("synthflow", "sf-storable").await.unwrap();
    let lead = object(&record.lead);
    assert_eq!(lead["score"], "1e300");
    assert_eq!(lead["\"\""], "x");
    assert_eq!(descend(&lead["deep"]).0, 30);
    let data = &record.analysis.as_ref().unwrap().data;
    let value = |name: &str| &data.iter().find(|item| item.name == name).unwrap().value;
    assert_eq!(value("big"), "1e300");
    let (maps, rest) = descend(value("deep"));
    assert_eq!(maps, 28, "levels 5 to 32 of the item");
    assert_eq!(
        serde_json::from_str::<Value>(rest.as_str().unwrap()).unwrap(),
        nested(7, json!(1))
    );
    // ClawOps: a message's undocumented fields (`extra`), and a blank sender number.
    let message = serde_json::to_vec(&json!({
        "event": "message.received", "message_id": "SM-storable", "from": "", "to": "07012345678",
        "body": "hi", "price": 1e-200, "": "empty", "deep": nested(35, json!(1))
    }))
    .unwrap();
    deliver(&mut stack, "clawops", &message).await;
    let item = stack
        .store
        .get_message("clawops", "SM-storable")
        .await
        .unwrap()
        .unwrap();
    let extra = Value::Object(item.message.extra.clone());
    assert_eq!(extra["price"], "1e-200");
    assert_eq!(extra["\"\""], "empty");
    assert_eq!(descend(&extra["deep"]).0, 30);
    assert_eq!(
        item.message.from_number, None,
        "an index key cannot be empty"
    );
}

#[tokio::test]
async fn a_cost_out_of_range_is_left_out_and_the_rest_of_the_event_kept() {
    let mut stack = Stack::new().await;
    let body = serde_json::to_vec(&json!({
        "event": "call_analyzed",
        "webhook_version": "v2",
        "call": {
            "call_id": "cost-overflow",
            "end_at": 1_741_842_394_000_i64,
            "call_cost": {"total_cost": 1e300},
            "call_analysis": {"summary": "The caller booked a table."}
        }
    }))
    .unwrap();
    deliver(&mut stack, "vox", &body).await;
    let record = stack.call("vox", "cost-overflow").await.unwrap();
    assert_eq!(record.cost, None);
    assert_eq!(
        record.analysis.unwrap().summary.as_deref(),
        Some("The caller booked a table.")
    );
}

/// Whether DynamoDB Local stores `value` as the top-level attribute `a` of an item.
async fn engine_stores(stack: &Stack, value: &Value) -> bool {
    let attribute: AttributeValue = serde_dynamo::to_attribute_value(value).unwrap();
    stack
        .store
        .client()
        .put_item()
        .table_name(&stack.config.calls_table)
        .item("pk", AttributeValue::S("probe".into()))
        .item("sk", AttributeValue::S("probe".into()))
        .item("a", attribute)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn the_normalization_leaves_exactly_what_dynamodb_local_stores() {
    // The module's model of DynamoDB's limits, checked against the engine itself at their edges:
    // a value is left alone if and only if DynamoDB Local stores it as serde_dynamo writes it.
    let stack = Stack::new().await;
    let below = |x: f64| f64::from_bits(x.to_bits() - 1);
    let number = |x: f64| Value::Number(Number::from_f64(x).unwrap());
    let mut cases = Vec::new();
    for depth in 28..=32 {
        cases.push(nested(depth, json!(1)));
        cases.push(nested(depth, json!({})));
        cases.push(nested(depth, json!([])));
    }
    for x in [
        1e-130,
        below(1e-130),
        below(1e126),
        1e126,
        -below(1e126),
        -1e126,
        1e300,
        5e-324,
        0.0,
    ] {
        cases.push(json!({ "n": number(x) }));
    }
    cases.push(json!({"": 1}));
    cases.push(json!({"b": {"": 1}}));
    cases.push(json!({"b": [{"c": {"": []}}]}));
    for value in cases {
        let mut normalized = value.clone();
        storable::storable_value(&mut normalized, ATTRIBUTE_LEVEL);
        let left_alone = normalized == value;
        assert_eq!(engine_stores(&stack, &value).await, left_alone, "{value}");
        assert!(
            engine_stores(&stack, &normalized).await,
            "the normalized value is stored: {normalized}"
        );
    }
}
