//! Every JSON example of the providers' documents, parsed field by field and merged into the
//! expected call records (`tests/fixtures/expected/*.json`).
//!
//! Snapshots are rewritten with `CALLHOOK_UPDATE_SNAPSHOTS=1`; review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::event::{
    CallPatch, CallStatus, CanonicalEvent, DeliveryContext, EventData, EventType, Message,
};
use callhook::provider;
use callhook::record::CallRecord;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(provider).join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(provider: &str, name: &str, received_at: i64) -> Vec<CanonicalEvent> {
    let module = provider::lookup(provider).unwrap();
    let ctx = DeliveryContext {
        received_at,
        delivery_id: None,
    };
    module
        .parse(&fixture(provider, name), &ctx)
        .unwrap_or_else(|e| panic!("{provider}/{name}: {e}"))
}

fn patch(event: &CanonicalEvent) -> &CallPatch {
    match &event.data {
        EventData::Call(patch) => patch,
        other => panic!("expected call data, got {other:?}"),
    }
}

const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";
const VOX_AGENT: &str = "7ea3516d-08f6-4129-ab40-a731e379b320";

#[test]
fn fixtures_are_the_seed_documents_examples_verbatim() {
    // GIVEN the providers' documents beside the project (read-only `shared/seeds`)
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds");
    let documents: Vec<String> = match std::fs::read_dir(&seeds) {
        Ok(dir) => dir
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect(),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "provider documents not found at {}; verbatim check needs them",
                seeds.display()
            );
            return;
        }
        Err(e) => panic!("provider documents missing at {}: {e}", seeds.display()),
    };
    // THEN every Vox and Synthflow fixture is one of their examples, byte for byte
    let mut checked = 0;
    for provider in ["vox", "synthflow"] {
        for entry in std::fs::read_dir(fixtures_dir().join(provider)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let example = text.strip_suffix('\n').unwrap_or(&text);
            assert!(
                documents.iter().any(|d| d.contains(example)),
                "not verbatim: {example:.80}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn vox_v2_call_started() {
    let events = parse("vox", "v2_call_started", 10);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.provider, e.event_type, e.call_id.as_str()),
        ("vox", EventType::CallStarted, VOX_CALL)
    );
    assert_eq!(e.occurred_at, Some(1_741_842_354_957));
    assert_eq!(e.received_at, 10);
    let p = patch(e);
    let agent = p.agent.as_ref().unwrap();
    assert_eq!(agent.id.as_deref(), Some(VOX_AGENT));
    assert_eq!(agent.version.as_deref(), Some("v3"));
    assert_eq!(p.direction.as_deref(), Some("inbound"));
    assert_eq!(p.from_number.as_deref(), Some("01012345678"));
    assert_eq!(p.to_number.as_deref(), Some("07012345678"));
    assert_eq!(p.started_at, Some(1_741_842_354_957));
    assert_eq!(p.status, Some(CallStatus::InProgress));
    assert_eq!(
        Value::Object(p.dynamic_variables.clone().unwrap()),
        json!({"customer_name": "홍길동"})
    );
    assert_eq!(
        Value::Object(p.metadata.clone().unwrap()),
        json!({"source": "crm"})
    );
    assert_eq!(p.sensitive_data_opt_out, Some(false));
    assert_eq!(p.transcript, None);
    assert_eq!(p.ended_at, None);
}

#[test]
fn vox_v2_mid_call_is_a_live_turn() {
    let events = parse("vox", "v2_mid_call", 10);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_type, EventType::MidCall);
    assert_eq!(e.occurred_at, Some(1_742_158_401_445));
    let turn = patch(e).live_turn.clone().unwrap();
    assert_eq!(turn.role, "user");
    assert_eq!(turn.content, "주문한 제품이 언제 도착하나요?");
    assert_eq!(turn.at, Some(1_742_158_401_445));
    assert_eq!(
        patch(e).agent.as_ref().unwrap().id.as_deref(),
        Some(VOX_AGENT)
    );
}

#[test]
fn vox_v2_call_ended() {
    let events = parse("vox", "v2_call_ended", 10);
    assert_eq!(events.len(), 1, "v2 call_ended carries no cost or analysis");
    let e = &events[0];
    assert_eq!(e.event_type, EventType::CallEnded);
    assert_eq!(e.occurred_at, Some(1_741_652_351_189));
    let p = patch(e);
    assert_eq!(p.status, Some(CallStatus::Ended));
    assert_eq!(p.provider_status.as_deref(), Some("ended"));
    assert_eq!(p.end_reason.as_deref(), Some("user_hangup"));
    assert_eq!(p.outcome.as_deref(), Some("completed"));
    assert_eq!(
        (p.started_at, p.ended_at),
        (Some(1_741_652_312_146), Some(1_741_652_351_189))
    );
    assert_eq!(
        p.duration_ms, None,
        "v2 has no duration field; the record computes it"
    );
    let transcript = p.transcript.as_ref().unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(
        (transcript[0].role.as_ref(), transcript[0].content.as_str()),
        ("agent", "안녕하세요. 무엇을 도와드릴까요?")
    );
    assert_eq!(
        (transcript[1].role.as_ref(), transcript[1].content.as_str()),
        ("user", "주문 상태를 확인하고 싶습니다.")
    );
    assert_eq!(
        p.recording_url.as_deref(),
        Some("https://storage.googleapis.com/agentify/egress/audio_recording.ogg")
    );
    assert_eq!(p.cost, None);
    assert_eq!(p.analysis, None);
}

#[test]
fn vox_v2_call_analyzed() {
    let events = parse("vox", "v2_call_analyzed", 10);
    assert_eq!(events.len(), 1);
    let p = patch(&events[0]);
    assert_eq!(events[0].event_type, EventType::CallAnalyzed);
    let cost = p.cost.as_ref().unwrap();
    assert_eq!(
        (cost.amount.as_i64(), cost.unit.as_str()),
        (Some(45), "credits")
    );
    let analysis = p.analysis.as_ref().unwrap();
    assert_eq!(
        analysis.summary.as_deref(),
        Some("고객이 주문 상태를 문의했고, 상담원이 배송 예정일을 안내했습니다.")
    );
    assert_eq!(analysis.sentiment.as_deref(), Some("neutral"));
    assert_eq!(
        serde_json::to_value(&analysis.data).unwrap(),
        json!([
            {"name": "문의 유형", "type": "string", "value": "배송 상태 문의"},
            {"name": "문제 해결 여부", "type": "boolean", "value": true}
        ])
    );
    assert_eq!(p.transcript.as_ref().unwrap().len(), 2);
    assert_eq!(p.end_reason.as_deref(), Some("user_hangup"));
}

#[test]
fn vox_v1_call_started_uses_legacy_names() {
    let events = parse("vox", "v1_call_started", 10);
    let p = patch(&events[0]);
    assert_eq!(events[0].event_type, EventType::CallStarted);
    assert_eq!(p.agent.as_ref().unwrap().id.as_deref(), Some(VOX_AGENT));
    assert_eq!(p.agent.as_ref().unwrap().version, None);
    assert_eq!(p.from_number.as_deref(), Some("01012345678"));
    assert_eq!(p.to_number.as_deref(), Some("07012345678"));
    assert_eq!(p.started_at, Some(1_741_842_354_957));
}

#[test]
fn vox_v1_mid_call_reads_the_mid_call_key() {
    let events = parse("vox", "v1_mid_call", 10);
    let e = &events[0];
    assert_eq!(
        (e.event_type, e.call_id.as_str()),
        (EventType::MidCall, VOX_CALL)
    );
    assert_eq!(e.occurred_at, Some(1_742_158_401_445));
    assert_eq!(
        patch(e).live_turn.as_ref().unwrap().content,
        "주문한 제품이 언제 도착하나요?"
    );
}

#[test]
fn vox_v1_call_ended_yields_ended_and_analyzed() {
    let events = parse("vox", "v1_call_ended", 10);
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::CallEnded, EventType::CallAnalyzed]);
    assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
    let ended = patch(&events[0]);
    assert_eq!(ended.duration_ms, Some(39_043));
    assert_eq!(
        (ended.started_at, ended.ended_at),
        (Some(1_741_652_312_146), Some(1_741_652_351_189))
    );
    assert_eq!(ended.transcript.as_ref().unwrap().len(), 2);
    assert_eq!(ended.cost, None);
    let analyzed = patch(&events[1]);
    let cost = analyzed.cost.as_ref().unwrap();
    assert_eq!(
        (cost.amount.as_i64(), cost.unit.as_str()),
        (Some(45), "credits")
    );
    assert_eq!(analyzed.analysis.as_ref().unwrap().data.len(), 2);
    assert_eq!(analyzed.status, Some(CallStatus::Ended));
}

#[test]
fn clawops_status_events() {
    let cases = [
        (
            "call_initiated",
            "call.initiated",
            EventType::CallStarted,
            CallStatus::Initiated,
            1_779_323_400_000,
        ),
        (
            "call_ringing",
            "call.ringing",
            EventType::CallStarted,
            CallStatus::Ringing,
            1_779_323_401_000,
        ),
        (
            "call_answered",
            "call.answered",
            EventType::CallStarted,
            CallStatus::InProgress,
            1_779_323_404_000,
        ),
        (
            "call_completed",
            "call.completed",
            EventType::CallEnded,
            CallStatus::Ended,
            1_779_323_499_000,
        ),
    ];
    for (name, provider_event, event_type, status, at) in cases {
        let events = parse("clawops", name, 10);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.provider_event, provider_event, "{name}");
        assert_eq!(e.event_type, event_type, "{name}");
        assert_eq!(e.call_id, "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d");
        assert_eq!(
            e.occurred_at,
            Some(at),
            "{name}: ISO 8601, epoch s and epoch ms all read"
        );
        let p = patch(e);
        assert_eq!(p.status, Some(status));
        assert_eq!(p.direction.as_deref(), Some("inbound"));
        assert_eq!(p.from_number.as_deref(), Some("01012345678"));
        assert_eq!(p.to_number.as_deref(), Some("07052351234"));
    }
    let answered = parse("clawops", "call_answered", 0);
    assert_eq!(patch(&answered[0]).started_at, Some(1_779_323_404_000));
    let completed = parse("clawops", "call_completed", 0);
    let p = patch(&completed[0]);
    assert_eq!(
        (p.ended_at, p.duration_ms),
        (Some(1_779_323_499_000), Some(95_000))
    );
    assert_eq!(p.outcome.as_deref(), Some("completed"));
}

#[test]
fn clawops_message_keeps_undocumented_fields() {
    let events = parse("clawops", "message_received", 10);
    let e = &events[0];
    assert_eq!(
        (e.event_type, e.call_id.as_str()),
        (
            EventType::MessageReceived,
            "SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
        )
    );
    let EventData::Message(message) = &e.data else {
        panic!("not a message")
    };
    let Message {
        from_number,
        to_number,
        body,
        created_at,
        extra,
        ..
    } = message.as_ref();
    assert_eq!(from_number.as_deref(), Some("01012345678"));
    assert_eq!(to_number.as_deref(), Some("07052351234"));
    assert_eq!(body.as_deref(), Some("내일 오후 3시 예약 확인했습니다."));
    assert_eq!(*created_at, Some(1_779_328_800_000));
    assert_eq!(Value::Object(extra.clone()), json!({"num_media": 0}));
    assert_eq!(
        e.record_key(),
        "msg#clawops#SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
    );
}

#[test]
fn synthflow_completion_yields_ended_and_analyzed() {
    let events = parse("synthflow", "completed", 10);
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::CallEnded, EventType::CallAnalyzed]);
    let e = &events[0];
    assert_eq!(e.call_id, "1711646262471x768387119913843100");
    let p = patch(e);
    assert_eq!(
        p.agent.as_ref().unwrap().id.as_deref(),
        Some("1711241656808x745681686585854500")
    );
    assert_eq!(p.to_number.as_deref(), Some("+1234334546"));
    assert_eq!(p.direction.as_deref(), Some("outbound"));
    assert_eq!(p.started_at, Some(1_711_646_266_205));
    assert_eq!(p.duration_ms, Some(32_000));
    assert_eq!(p.ended_at, Some(1_711_646_298_205));
    assert_eq!(p.end_reason.as_deref(), Some("completed"));
    assert_eq!(p.outcome.as_deref(), Some("completed"));
    assert_eq!(
        Value::Object(p.lead.clone().unwrap()),
        json!({"name": "David", "phone_number": "+1234334546"})
    );
    let turns = p.transcript.as_ref().unwrap();
    let roles: Vec<_> = turns.iter().map(|t| t.role.as_ref()).collect();
    assert_eq!(roles, ["agent", "user", "agent", "user"]);
    assert_eq!(turns[1].content, "Yes. I want to buy a car.");
    assert_eq!(turns[3].content, "I want to buy a car by");
    assert!(
        turns[0]
            .content
            .starts_with("Hello, I am calling from [company]!")
    );
    let analysis = patch(&events[1]).analysis.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(&analysis.data).unwrap(),
        json!([{"name": "purchase", "type": "string", "value": "car"}])
    );
}

/// The calls of the fixtures, each as the list of (provider, fixture) deliveries.
fn calls() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "vox_v2",
            [
                "v2_call_started",
                "v2_mid_call",
                "v2_call_ended",
                "v2_call_analyzed",
            ]
            .map(|f| ("vox", f))
            .to_vec(),
        ),
        (
            "vox_v1",
            ["v1_call_started", "v1_mid_call", "v1_call_ended"]
                .map(|f| ("vox", f))
                .to_vec(),
        ),
        (
            "clawops_answered",
            [
                "call_initiated",
                "call_ringing",
                "call_answered",
                "call_completed",
            ]
            .map(|f| ("clawops", f))
            .to_vec(),
        ),
        (
            "clawops_missed",
            ["missed_call_initiated", "missed_call_completed"]
                .map(|f| ("clawops", f))
                .to_vec(),
        ),
        ("synthflow", vec![("synthflow", "completed")]),
    ]
}

fn merged(deliveries: &[(&str, &str)]) -> CallRecord {
    let events: Vec<CanonicalEvent> = deliveries
        .iter()
        .enumerate()
        .flat_map(|(i, (provider, name))| parse(provider, name, 1_800_000_000_000 + i as i64))
        .collect();
    CallRecord::from_events(&events).unwrap()
}

#[test]
fn merged_records_match_their_snapshots() {
    for (name, deliveries) in calls() {
        let record = merged(&deliveries);
        let actual = record.to_contract_json();
        let path = fixtures_dir().join("expected").join(format!("{name}.json"));
        if std::env::var_os("CALLHOOK_UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        }
        let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn merged_records_do_not_depend_on_delivery_order() {
    for (name, deliveries) in calls() {
        let forward = merged(&deliveries);
        let mut reversed = deliveries.clone();
        reversed.reverse();
        // Received-at times follow delivery order, so compare everything but them.
        let mut backward = merged(&reversed);
        backward.first_event_at = forward.first_event_at;
        backward.last_event_at = forward.last_event_at;
        assert_eq!(forward, backward, "{name}");
    }
}

#[test]
fn key_record_fields_of_each_call() {
    let v2 = merged(&calls()[0].1);
    assert_eq!(v2.duration_ms, Some(39_043), "computed from end - start");
    assert_eq!(v2.status, Some(CallStatus::Ended));
    assert_eq!(
        v2.transcript.len(),
        2,
        "call_ended transcript replaces the mid_call turn"
    );
    assert_eq!(
        v2.events,
        [
            EventType::CallStarted,
            EventType::MidCall,
            EventType::CallEnded,
            EventType::CallAnalyzed
        ]
    );
    assert!(!v2.missed);

    let missed = merged(&calls()[3].1);
    assert!(missed.missed, "inbound, completed after 0 s");
    assert_eq!(missed.duration_ms, Some(0));
    let answered = merged(&calls()[2].1);
    assert!(!answered.missed);
    assert_eq!(answered.started_at, Some(1_779_323_404_000));
    assert_eq!(answered.duration_ms, Some(95_000));
}
