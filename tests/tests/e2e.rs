//! callhook end to end on DynamoDB Local: API Gateway requests in, call records out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::EventType;
use callhook::config::{DEFAULT_MAX_BODY_BYTES, LAMBDA_PAYLOAD_LIMIT};
use callhook::store::{EventItem, ListIndex, TYPE_QUARANTINE};
use callhook_e2e::*;
use serde_json::json;

const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";

#[tokio::test]
async fn every_seed_fixture_becomes_its_expected_record() {
    // GIVEN a stack with each provider's default scheme (Vox and Synthflow: URL token; ClawOps:
    // X-ClawOps-Signature HMAC)
    let mut stack = Stack::new().await;
    // WHEN every fixture is delivered as its provider would, and the stream is processed
    for (provider, name) in all_fixtures() {
        let reply = stack.send_fixture(provider, name).await;
        assert_eq!(reply.status, 200, "{provider}/{name}: {}", reply.body);
        assert_eq!(reply.body["received"], true);
        assert_eq!(reply.body["duplicate"], false);
    }
    stack.drain().await;
    // THEN each call's record is the expected one
    for (provider, call_id, snapshot) in SEED_CALLS {
        let record = stack
            .call(provider, call_id)
            .await
            .unwrap_or_else(|| panic!("no record {call_id}"));
        assert!(record.first_event_at.is_some() && record.last_event_at >= record.first_event_at);
        assert_snapshot(snapshot, &comparable(&record));
    }
    let message = stack
        .store
        .get_message("clawops", "SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.message.body.as_deref(),
        Some("내일 오후 3시 예약 확인했습니다.")
    );
    assert_eq!(message.pk, "msg#clawops#SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a");
    // The indexes list calls and messages by number, agent and time, without a scan.
    let pks =
        |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
            let mut pks: Vec<String> = items
                .iter()
                .map(|i| i["pk"].as_s().unwrap().clone())
                .collect();
            pks.sort();
            pks
        };
    let from = stack
        .store
        .list(ListIndex::From, "n#01012345678", 0, i64::MAX, None)
        .await
        .unwrap();
    assert_eq!(
        pks(from),
        [
            "call#clawops#CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d",
            "call#vox#3079f46c-d141-4cd9-805f-69f212136b66",
            "msg#clawops#SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
        ]
    );
    let agent = stack
        .store
        .list(
            ListIndex::Agent,
            "synthflow#1711241656808x745681686585854500",
            0,
            i64::MAX,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        pks(agent),
        ["call#synthflow#1711646262471x768387119913843100"]
    );
    let clawops = stack
        .store
        .list(
            ListIndex::Time,
            "clawops#2026-05-21",
            1_779_323_000_000,
            1_779_323_500_000,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        pks(clawops),
        ["call#clawops#CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d"],
        "time range excludes the later missed call"
    );
    let to = stack
        .store
        .list(ListIndex::To, "n#07052351234", 0, i64::MAX, Some(1))
        .await
        .unwrap();
    assert_eq!(to.len(), 1);
    // One event item per canonical event: 7 Vox bodies give 8 (v1 call_ended gives two), 7 ClawOps,
    // Synthflow's completion 2; and as many as each later provider's parser makes of its own.
    let later: usize = all_fixtures()
        .into_iter()
        .filter(|(p, _)| !matches!(*p, "vox" | "clawops" | "synthflow"))
        .map(|(p, n)| {
            let ctx = callhook::event::DeliveryContext::default();
            let provider = callhook::provider::lookup(p).unwrap();
            provider.parse(&fixture(p, n), &ctx).unwrap().len()
        })
        .sum();
    let events: Vec<EventItem> = stack.event_items().await;
    assert_eq!(events.len(), 8 + 7 + 2 + later);
    assert!(stack.runner.dead_letters.is_empty());
}

#[tokio::test]
async fn a_delivery_repeated_five_times_is_stored_once() {
    let mut stack = Stack::new().await;
    let mut single = Stack::new().await;
    for attempt in 0..5 {
        let reply = stack.send_fixture("vox", "v1_call_ended").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body["duplicate"],
            attempt > 0,
            "attempt {attempt}: {}",
            reply.body
        );
        stack.drain().await;
    }
    single.send_fixture("vox", "v1_call_ended").await;
    single.drain().await;
    let events = stack.event_items().await;
    assert_eq!(events.len(), 2, "call_ended + call_analyzed, once");
    assert_eq!(
        comparable(&stack.call("vox", VOX_CALL).await.unwrap()),
        comparable(&single.call("vox", VOX_CALL).await.unwrap())
    );
}

#[tokio::test]
async fn events_delivered_out_of_order_give_the_same_record() {
    let mut reversed = Stack::new().await;
    for name in [
        "v2_call_analyzed",
        "v2_call_ended",
        "v2_mid_call",
        "v2_call_started",
    ] {
        assert_eq!(reversed.send_fixture("vox", name).await.status, 200);
        reversed.drain().await;
    }
    let mut ordered = Stack::new().await;
    for name in [
        "v2_call_started",
        "v2_mid_call",
        "v2_call_ended",
        "v2_call_analyzed",
    ] {
        ordered.send_fixture("vox", name).await;
    }
    ordered.drain().await;
    let record = reversed.call("vox", VOX_CALL).await.unwrap();
    assert_eq!(
        comparable(&record),
        comparable(&ordered.call("vox", VOX_CALL).await.unwrap())
    );
    assert_eq!(
        record.transcript.len(),
        2,
        "call_ended's transcript stays over the later mid_call turn"
    );
    assert_eq!(record.started_at, Some(1_741_652_312_146));
    assert_eq!(record.duration_ms, Some(39_043));
}

#[tokio::test]
async fn rejected_requests_write_nothing() {
    let mut stack = Stack::with(
        &endpoint(),
        [
            default_vars(),
            vec![("CALLHOOK_MAX_BODY_BYTES".into(), "2048".into())],
        ]
        .concat(),
    )
    .await;
    let body = fixture("vox", "v2_call_started");
    let clawops = fixture("clawops", "call_completed");
    let cases = [
        (
            "wrong token",
            stack
                .request("POST", "vox", &[], Some("nope"), &body, false)
                .await,
            401,
        ),
        (
            "no token",
            stack.request("POST", "vox", &[], None, &body, false).await,
            401,
        ),
        (
            "bad signature",
            stack
                .request(
                    "POST",
                    "clawops",
                    &[("X-ClawOps-Signature", "sha256=00")],
                    None,
                    &clawops,
                    false,
                )
                .await,
            401,
        ),
        (
            "unknown provider",
            stack
                .request("POST", "acme", &[], Some(VOX_TOKEN), &body, false)
                .await,
            404,
        ),
        (
            "wrong method",
            stack
                .request("GET", "vox", &[], Some(VOX_TOKEN), &body, false)
                .await,
            405,
        ),
        (
            "too large",
            stack
                .request(
                    "POST",
                    "vox",
                    &[],
                    Some(VOX_TOKEN),
                    &vec![b' '; 2049],
                    false,
                )
                .await,
            413,
        ),
    ];
    for (name, reply, status) in cases {
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert!(
            reply.body["error"].is_string() && reply.body["message"].is_string(),
            "{name}"
        );
    }
    // Authenticated but unusable: 400 / 422, kept in quarantine only.
    let not_json = stack
        .request("POST", "vox", &[], Some(VOX_TOKEN), b"call ended!", false)
        .await;
    assert_eq!(
        (not_json.status, not_json.body["error"].as_str()),
        (400, Some("malformed_request"))
    );
    let unusable = stack
        .request(
            "POST",
            "vox",
            &[],
            Some(VOX_TOKEN),
            br#"{"event":"call_ended","call":{}}"#,
            false,
        )
        .await;
    assert_eq!(
        (unusable.status, unusable.body["error"].as_str()),
        (422, Some("unusable_payload"))
    );
    stack.drain().await;
    let items = stack.event_items().await;
    assert_eq!(items.len(), 2, "only the two quarantined bodies");
    assert!(
        items
            .iter()
            .all(|i| i.kind == TYPE_QUARANTINE && i.pk == "quarantine#vox")
    );
    let quarantined = stack
        .store
        .load_body(
            items
                .iter()
                .find(|i| {
                    i.error
                        .as_deref()
                        .is_some_and(|e| e.contains("JSON object"))
                })
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(quarantined, b"call ended!");
    assert!(stack.call_items().await.is_empty());
}

#[tokio::test]
async fn base64_bodies_from_api_gateway_verify_on_the_decoded_bytes() {
    let mut stack = Stack::new().await;
    let body = fixture("clawops", "call_answered");
    let (headers, _) = stack.sign("clawops", &body);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = stack
        .request("POST", "clawops", &headers, None, &body, true)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    stack.drain().await;
    let record = stack
        .call("clawops", "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d")
        .await
        .unwrap();
    assert_eq!(record.started_at, Some(1_779_323_404_000));
}

/// A Vox call_ended whose transcript makes the body about `size` bytes of poorly compressible text.
fn huge_call_ended(size: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut turns = Vec::new();
    let mut total = 0;
    while total < size {
        let content: String = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect();
        total += content.len() + 40;
        turns.push(json!({"role": if turns.len() % 2 == 0 { "agent" } else { "user" }, "content": content}));
    }
    serde_json::to_vec(&json!({
        "event": "call_ended",
        "webhook_version": "v2",
        "call": {"call_id": format!("huge-{size}"), "call_status": "ended", "start_at": 1, "end_at": 2, "transcript": turns}
    }))
    .unwrap()
}

#[tokio::test]
async fn transcripts_of_one_megabyte_and_near_the_body_limit_are_stored_without_loss() {
    let mut stack = Stack::new().await;
    for size in [1_000_000, DEFAULT_MAX_BODY_BYTES - 100_000] {
        let body = huge_call_ended(size);
        let reply = stack.send("vox", &body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let items = stack.event_items().await;
        let item = items
            .iter()
            .find(|i| i.call_id == format!("huge-{size}") && i.kind == "call_ended");
        let item = item.unwrap_or_else(|| {
            panic!(
                "{:?}",
                items
                    .iter()
                    .map(|i| (&i.pk, &i.kind, i.parts))
                    .collect::<Vec<_>>()
            )
        });
        assert_eq!(
            stack.store.load_body(item).await.unwrap(),
            body,
            "byte for byte"
        );
        if size > 2_000_000 {
            assert!(item.parts > 0, "a 2.9 MB body does not fit one item");
        }
        // Listings read the events without their bodies, and know each body's size.
        let headers = stack.store.event_headers(&item.pk).await.unwrap();
        let header = headers.iter().find(|h| h.sk == item.sk).unwrap();
        assert_eq!((&header.body, &header.body_gz), (&None, &None));
        assert_eq!(header.body_bytes, Some(body.len() as u64));
        assert_eq!(
            stack.store.body_size(header).await.unwrap(),
            body.len() as u64
        );
        stack.drain().await;
        let record = stack.call("vox", &format!("huge-{size}")).await.unwrap();
        let stored: usize = record.transcript.iter().map(|t| t.content.len()).sum();
        assert!(stored >= size * 9 / 10, "{stored} of {size}");
    }
    assert!(stack.runner.dead_letters.is_empty());
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_not_retried_and_its_neighbours_merge() {
    let mut stack = Stack::new().await;
    // GIVEN a stored call_ended whose body the parser rejects (as after a parser regression)
    let poison = raw_event_item("poison", "ev#0000", POISON_BODY);
    stack.send_fixture("clawops", "call_completed").await;
    stack.store_raw(&poison).await;
    stack.send_fixture("vox", "v2_call_ended").await;
    stack.send_fixture("clawops", "missed_call_completed").await;
    // WHEN the pipe and the functions process the stream
    stack.drain().await;
    // THEN the poison event was tried once, recorded with its keys and reason, and not queued
    let failures = stack.store.failures().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(
        (
            failure.function.as_str(),
            failure.record_key.as_str(),
            failure.event_pk.as_str(),
            failure.event_sk.as_str(),
            failure.code.as_str(),
        ),
        (
            "call-ended",
            "call#vox#poison",
            "call#vox#poison",
            "ev#0000",
            "unusable_payload"
        )
    );
    assert!(!failure.reason.is_empty() && failure.at > 0);
    assert!(stack.runner.dead_letters.is_empty());
    assert_eq!(
        stack.runner.stats.retries, 0,
        "a permanent failure is not retried"
    );
    assert_eq!(stack.runner.stats.failed, 1);
    // AND its neighbours were merged
    assert!(
        stack
            .call("vox", VOX_CALL)
            .await
            .unwrap()
            .ended_at
            .is_some()
    );
    assert!(
        stack
            .call("clawops", "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d")
            .await
            .is_some()
    );
    assert!(
        stack
            .call("clawops", "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9")
            .await
            .unwrap()
            .missed
    );
    assert!(stack.call("vox", "poison").await.is_none());
    report(
        "poison",
        json!({
            "events": 4, "poison": 1, "recorded": failures.len(),
            "queued": stack.runner.dead_letters.len(),
            "invocations": stack.runner.stats.invocations,
            "retries": stack.runner.stats.retries,
            "neighbours_merged": 3,
        }),
    );
}

#[tokio::test]
async fn tables_created_locally_match_the_template() {
    let stack = Stack::new().await;
    let client = stack.store.client();
    let events = client
        .describe_table()
        .table_name(&stack.config.events_table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<_> = events
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );
    let stream = events.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type().unwrap().as_str(), "NEW_IMAGE");

    let calls = client
        .describe_table()
        .table_name(&stack.config.calls_table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let template: serde_json::Value = serde_json::to_value(
        serde_norway::from_str::<serde_norway::Value>(
            &std::fs::read_to_string(repo_root().join("template.yaml")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let declared = &template["Resources"]["CallsTable"]["Properties"]["GlobalSecondaryIndexes"];
    let mut expected: Vec<(String, Vec<String>)> = declared
        .as_array()
        .unwrap()
        .iter()
        .map(|gsi| {
            let keys = gsi["KeySchema"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
                .collect();
            (gsi["IndexName"].as_str().unwrap().to_owned(), keys)
        })
        .collect();
    let mut actual: Vec<(String, Vec<String>)> = calls
        .global_secondary_indexes()
        .iter()
        .map(|gsi| {
            let keys = gsi
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect();
            (gsi.index_name().unwrap().to_owned(), keys)
        })
        .collect();
    expected.sort();
    actual.sort();
    assert_eq!(actual, expected);
    assert_eq!(actual.len(), 4);
}

#[tokio::test]
async fn a_storage_outage_answers_5xx_and_nothing_is_lost() {
    let dir = std::env::temp_dir().join(format!("callhook-outage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ddb, endpoint) = OwnDynamoDb::start(&dir, None);
    let mut stack = Stack::with(&endpoint, default_vars()).await;
    assert_eq!(
        stack.send_fixture("vox", "v2_call_started").await.status,
        200
    );

    // WHEN DynamoDB goes away
    ddb.stop();
    let reply = stack.send_fixture("vox", "v2_call_ended").await;
    // THEN the sender is told to retry, never that it was received
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["error"], "storage_unavailable");

    // WHEN it is back and the sender retries
    let (_restarted, _) = OwnDynamoDb::start(&dir, Some(&ddb.port));
    std::mem::forget(ddb);
    let reply = stack.send_fixture("vox", "v2_call_ended").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["duplicate"], false,
        "the failed attempt wrote nothing"
    );
    // The stream poller recovers from the restart (its shard iterators expired).
    let mut drained = false;
    for _ in 0..5 {
        if stack.runner.drain(&stack.config).await.is_ok() {
            drained = true;
            break;
        }
    }
    assert!(drained);
    // THEN both events are in the record, once
    let record = stack.call("vox", VOX_CALL).await.unwrap();
    assert_eq!(
        record.events,
        [EventType::CallStarted, EventType::CallEnded]
    );
    assert_eq!(record.duration_ms, Some(39_043));
    assert_eq!(stack.event_items().await.len(), 2);
}

/// A Vox body of exactly `size` bytes whose JSON-escaped form is as large as it can be: its
/// padding is `\"` pairs, each of which API Gateway's event carries as four bytes (`\\\"`).
fn worst_case_json_body(size: usize) -> Vec<u8> {
    let mut body = br#"{"event":"call_started","webhook_version":"v2","call":{"call_id":"c-limit","start_at":1741842354957},"pad":""#.to_vec();
    while body.len() + 2 + 2 <= size {
        body.extend_from_slice(br#"\""#);
    }
    body.resize(size - 2, b'x');
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), size);
    serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
    body
}

/// The API Gateway event for `body`, with the request line and header values filling HTTP API's
/// 10,240-byte quota, the user agent (carried twice in the event) made of quotes (escaped to two
/// bytes each).
fn largest_event(body: &[u8], base64: bool) -> serde_json::Value {
    let request_line = format!("POST /webhooks/vox?token={VOX_TOKEN} HTTP/1.1");
    let user_agent = "\"".repeat(10_240 - request_line.len() - "application/json".len());
    let mut event = api_gateway_event(
        "POST",
        "vox",
        &[("user-agent", &user_agent)],
        Some(VOX_TOKEN),
        body,
        base64,
    );
    event["requestContext"]["http"]["userAgent"] = user_agent.into();
    event
}

#[tokio::test]
async fn a_body_exactly_at_the_default_limit_fits_lambdas_payload_and_is_accepted() {
    // GIVEN the default limit, and a body at it in the largest envelope HTTP API sends
    let mut stack = Stack::new().await;
    assert_eq!(stack.config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    let body = worst_case_json_body(DEFAULT_MAX_BODY_BYTES);
    for base64 in [false, true] {
        let event = largest_event(&body, base64);
        // THEN the whole event is under Lambda's synchronous payload limit
        let size = event.to_string().len();
        assert!(
            size < LAMBDA_PAYLOAD_LIMIT,
            "{size} bytes (base64: {base64})"
        );
        if !base64 {
            assert!(
                size > 2 * DEFAULT_MAX_BODY_BYTES,
                "the body did double: {size}"
            );
        }
        // AND ingest accepts it
        let reply = stack.deliver(&event).await;
        assert_eq!(reply.status, 200, "base64 {base64}: {}", reply.body);
    }
    stack.drain().await;
    assert!(stack.call("vox", "c-limit").await.is_some());
}

#[tokio::test]
async fn a_body_one_byte_over_the_default_limit_is_refused_with_413() {
    let stack = Stack::new().await;
    let body = worst_case_json_body(DEFAULT_MAX_BODY_BYTES + 1);
    for base64 in [false, true] {
        let reply = stack.deliver(&largest_event(&body, base64)).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!(reply.body["error"], "payload_too_large");
        assert_eq!(
            reply.body["message"],
            "The request body is 3000001 bytes, more than the 3000000-byte limit."
        );
    }
    assert!(stack.event_items().await.is_empty());
}

#[tokio::test]
async fn under_redact_an_opted_out_body_that_fails_to_parse_never_stores_its_phone_number() {
    // GIVEN the redact policy
    let mut stack = Stack::with(&endpoint(), [default_vars(), redact_vars()].concat()).await;
    let phone = "01055501234";
    // WHEN verified bodies of an opted-out call fail to parse: valid JSON of the wrong shape,
    // and JSON cut short after the flag
    let wrong_shape = format!(
        r#"{{"event":5,"webhook_version":"v2","call":{{"call_id":"c-opt","from_number":"{phone}","transcript":[{{"role":"user","content":"my number is {phone}"}}],"opt_out_sensitive_data_storage":true}}}}"#
    );
    let truncated = format!(
        r#"{{"event":"call_ended","call":{{"call_id":"c-opt","opt_out_sensitive_data_storage":true,"from_number":"{phone}","transcript":"my number is {phone}"#
    );
    let reply = stack.send("vox", wrong_shape.as_bytes()).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let reply = stack.send("vox", truncated.as_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // AND a body that does not opt out fails too
    let plain = r#"{"event":5,"call":{"call_id":"c-plain","from_number":"07012345678"}}"#;
    assert_eq!(stack.send("vox", plain.as_bytes()).await.status, 422);
    stack.drain().await;
    // THEN the quarantine holds the three, and the opted-out number is nowhere in storage
    let items = stack.event_items().await;
    assert_eq!(items.len(), 3, "{items:?}");
    let mut bodies = Vec::new();
    for item in &items {
        assert_eq!(item.kind, TYPE_QUARANTINE);
        let body = String::from_utf8(stack.store.load_body(item).await.unwrap()).unwrap();
        assert!(!body.contains("0105550"), "{body}");
        assert!(!format!("{item:?}").contains("0105550"), "{item:?}");
        bodies.push(serde_json::from_str::<serde_json::Value>(&body).unwrap());
    }
    assert!(stack.call_items().await.is_empty());
    // The JSON one is kept redacted, the cut one as its top-level keys, the other verbatim.
    let redacted = bodies
        .iter()
        .find(|b| b["event"] == 5 && b["call"]["call_id"] == "c-opt");
    assert_eq!(redacted.unwrap()["call"]["from_number"], "*******1234");
    assert!(redacted.unwrap()["call"].get("transcript").is_none());
    let summary = bodies.iter().find(|b| b.get("top_level_keys").is_some());
    assert_eq!(summary.unwrap()["top_level_keys"], json!(["event", "call"]));
    assert!(
        bodies
            .iter()
            .any(|b| *b == serde_json::from_str::<serde_json::Value>(plain).unwrap())
    );
}

fn redact_vars() -> Vec<(String, String)> {
    vec![
        ("CALLHOOK_OPT_OUT_POLICY".into(), "redact".into()),
        ("CALLHOOK_NUMBER_INDEX_KEY".into(), NUMBER_KEY.into()),
    ]
}

const NUMBER_KEY: &str = "e2e-number-index-key";

#[tokio::test]
async fn under_redact_an_opted_out_call_is_found_by_its_real_number_and_no_number_is_stored() {
    // GIVEN the redact policy and a call that opts out, with a caller's number
    let mut stack = Stack::with(&endpoint(), [default_vars(), redact_vars()].concat()).await;
    let (from, to) = ("+14155550123", "+14155550999");
    let started = serde_json::json!({"event": "call_started", "webhook_version": "v2", "call": {
        "call_id": "c-private", "call_type": "inbound", "from_number": from, "to_number": to,
        "start_at": 1_780_000_000_000i64, "opt_out_sensitive_data_storage": true,
    }});
    let reply = stack
        .send("vox", &serde_json::to_vec(&started).unwrap())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    stack.drain().await;
    // THEN the record's numbers are masked
    let record = stack.call("vox", "c-private").await.unwrap();
    assert!(!record.from_number.as_deref().unwrap().contains("415555"));
    // AND a lookup by the real number finds the call, through its keyed hash
    let key = callhook::store::queries::number_key_of(from, Some(NUMBER_KEY.as_bytes())).unwrap();
    let found = stack
        .store
        .list(ListIndex::From, &key, 0, i64::MAX, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["pk"].as_s().unwrap(), "call#vox#c-private");
    let to_key = callhook::store::queries::number_key_of(to, Some(NUMBER_KEY.as_bytes())).unwrap();
    assert_eq!(
        stack
            .store
            .list(ListIndex::To, &to_key, 0, i64::MAX, None)
            .await
            .unwrap()
            .len(),
        1
    );
    // AND neither number is anywhere in either table
    let everything = format!(
        "{:?}{:?}",
        stack.call_items().await,
        stack.event_items().await
    );
    assert!(!everything.contains("4155550123") && !everything.contains("4155550999"));
}

// GIVEN the stored events of many calls (live turns, full transcripts, analyses)
// WHEN every event of every call is merged at once, as racing functions would in AWS
// THEN each record equals its events merged one by one in memory, and the optimistic
// concurrency did have to retry (the race happened on the real engine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_merged_all_at_once_on_dynamodb_local_give_the_record_of_their_events() {
    use callhook_e2e::traffic::{Rng, vox_call};
    let stack = Stack::new().await;
    let mut rng = Rng::new(5);
    let calls: Vec<_> = (0..6).map(|i| vox_call(i, 12, &mut rng)).collect();
    for event in calls.iter().flatten() {
        assert_eq!(stack.send("vox", &event.body).await.status, 200);
    }
    let mut events = Vec::new();
    for call in &calls {
        let key = callhook::event::record_key("vox", EventType::CallStarted, &call[0].call_id);
        for item in stack.store.events_of(&key).await.unwrap() {
            events.push(
                callhook::rebuild::rebuild(&stack.store, &item)
                    .await
                    .unwrap(),
            );
        }
    }
    let tasks: Vec<_> = events
        .iter()
        .cloned()
        .map(|event| {
            let store = stack.store.clone();
            tokio::spawn(async move { store.merge_call(&event, None).await.unwrap() })
        })
        .collect();
    let mut retries = 0;
    for task in tasks {
        retries += task.await.unwrap().attempts - 1;
    }
    for call in &calls {
        let id = &call[0].call_id;
        let mine: Vec<_> = events.iter().filter(|e| &e.call_id == id).collect();
        let expected = callhook::CallRecord::from_events(mine).unwrap();
        assert_eq!(stack.call("vox", id).await.unwrap(), expected, "{id}");
    }
    println!(
        "{} events of {} calls merged at once: {retries} lost races retried",
        events.len(),
        calls.len()
    );
    assert!(
        retries > 0,
        "no merge ever lost a race: the test did not race"
    );
}
