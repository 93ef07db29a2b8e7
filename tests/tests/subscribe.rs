//! The README's subscription example works on the events callhook puts: its rule's pattern uses
//! only what EventBridge (and the local stack) implement, and matches a missed call's event and
//! no other kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::bus::{CallEventKind, call_event};
use callhook::record::CallRecord;
use callhook_e2e::repo_root;
use callhook_local::template::{check_pattern, matches};
use serde_json::{Value, json};

/// The YAML blocks of the README that declare `name`.
fn readme_resource(name: &str) -> Value {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let block = readme
        .split("```yaml")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|block| block.contains(&format!("{name}:")))
        .unwrap_or_else(|| panic!("the README has no YAML block declaring {name}"));
    let resources: serde_norway::Value = serde_norway::from_str(block).unwrap();
    serde_json::to_value(resources).unwrap()[name].clone()
}

fn envelope(kind: CallEventKind, record: &CallRecord) -> Value {
    let event = call_event(kind, record);
    json!({"source": event.source, "detail-type": event.detail_type, "detail": event.detail})
}

#[test]
fn the_readme_rule_for_missed_calls_matches_missed_calls_only() {
    let rule = readme_resource("MissedCallRule");
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    let pattern = &rule["Properties"]["EventPattern"];
    check_pattern(pattern).unwrap();
    let mut record = CallRecord::new("clawops", "CA1");
    record.missed = true;
    record.ended_at = Some(1);
    assert!(matches(pattern, &envelope(CallEventKind::Missed, &record)));
    assert!(!matches(pattern, &envelope(CallEventKind::Ended, &record)));
    assert!(!matches(
        pattern,
        &envelope(CallEventKind::Analyzed, &record)
    ));
}
