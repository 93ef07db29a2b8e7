//! template.yaml and the function crates agree: every crate under `functions/` has its template
//! resource (binary name, stream filter on the canonical type its `main.rs` serves, least-privilege
//! policy), and every function resource has its crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::EventType;
use callhook::local::template::{stream_mappings, template};
use callhook_e2e::repo_root;
use serde_json::Value;
use std::collections::BTreeSet;

fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(repo_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// (action, resource logical id) pairs a function's policies grant.
fn grants(function: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for policy in function
        .pointer("/Properties/Policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for statement in policy["Statement"].as_array().into_iter().flatten() {
            assert_eq!(statement["Effect"], "Allow");
            let actions: Vec<String> = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
                other => panic!("unexpected Action {other}"),
            };
            let resource = statement["Resource"].to_string();
            let target = ["EventsTable", "CallsTable", "FailureQueue"]
                .into_iter()
                .find(|t| resource.contains(&format!("{t}.")))
                .unwrap_or_else(|| panic!("policy resource {resource} is not one of the stack's"));
            for action in actions {
                out.insert((action, target.to_owned()));
            }
        }
    }
    out
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

#[test]
fn every_function_crate_has_its_template_resource_and_the_reverse() {
    let template = template().unwrap();
    let functions: Vec<(&String, &Value)> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .collect();
    let binaries: BTreeSet<String> = functions
        .iter()
        .map(|(_, r)| {
            r.pointer("/Metadata/BuildProperties/Binary")
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        binaries,
        function_crates(),
        "template functions vs crates under functions/"
    );

    for (id, function) in &functions {
        assert_eq!(
            function
                .pointer("/Metadata/BuildMethod")
                .and_then(Value::as_str),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = function
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .unwrap();
        let manifest = std::fs::read_to_string(
            repo_root()
                .join("functions")
                .join(binary)
                .join("Cargo.toml"),
        )
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "crate name of {binary}"
        );
    }
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Architectures"], serde_json::json!(["arm64"]));
}

#[test]
fn stream_functions_filter_on_the_type_their_main_serves() {
    let mappings = stream_mappings().unwrap();
    let served: BTreeSet<EventType> = mappings.iter().map(|m| m.event_type).collect();
    let expected: BTreeSet<EventType> = [
        EventType::CallStarted,
        EventType::MidCall,
        EventType::CallEnded,
        EventType::CallAnalyzed,
        EventType::MessageReceived,
    ]
    .into();
    assert_eq!(
        served, expected,
        "one stream function per canonical type (unknown events are only stored)"
    );
    for mapping in &mappings {
        assert_eq!(
            mapping.binary,
            mapping.event_type.as_str().replace('_', "-"),
            "{}",
            mapping.logical_id
        );
        let main = std::fs::read_to_string(
            repo_root()
                .join("functions")
                .join(&mapping.binary)
                .join("src/main.rs"),
        )
        .unwrap();
        let variant = format!("{:?}", mapping.event_type);
        assert!(
            main.contains(&format!("EventType::{variant})")),
            "{} serves {variant}",
            mapping.binary
        );
        assert!(
            mapping
                .patterns
                .iter()
                .all(|p| p["eventName"] == serde_json::json!(["INSERT"]))
        );
        assert!(
            mapping.bisect_on_error
                && mapping.report_batch_item_failures
                && mapping.has_failure_destination
        );
        assert!(
            (1..=10).contains(&mapping.maximum_retry_attempts),
            "bounded retries"
        );
    }
}

#[test]
fn each_function_is_granted_exactly_what_its_code_does() {
    let template = template().unwrap();
    let resources = template["Resources"].as_object().unwrap();
    assert_eq!(
        grants(&resources["IngestFunction"]),
        set(&[
            ("dynamodb:PutItem", "EventsTable"),
            ("dynamodb:GetItem", "EventsTable"),
        ])
    );
    let stream = set(&[
        ("dynamodb:Query", "EventsTable"),
        ("dynamodb:GetItem", "CallsTable"),
        ("dynamodb:PutItem", "CallsTable"),
        ("dynamodb:Query", "CallsTable"),
        ("dynamodb:DeleteItem", "CallsTable"),
        ("sqs:SendMessage", "FailureQueue"),
    ]);
    for mapping in stream_mappings().unwrap() {
        assert_eq!(
            grants(&resources[&mapping.logical_id]),
            stream,
            "{}",
            mapping.logical_id
        );
    }
}

#[test]
fn secrets_are_no_echo_parameters_reaching_only_ingest() {
    let template = template().unwrap();
    for provider in ["Vox", "ClawOps", "Synthflow"] {
        for kind in ["Secrets", "Tokens"] {
            let parameter = &template["Parameters"][format!("{provider}{kind}")];
            assert_eq!(parameter["NoEcho"], true, "{provider}{kind}");
        }
    }
    let resources = template["Resources"].as_object().unwrap();
    assert_eq!(template["Parameters"]["NumberIndexKey"]["NoEcho"], true);
    for (id, resource) in resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
    {
        let env = resource
            .pointer("/Properties/Environment/Variables")
            .map(Value::to_string)
            .unwrap_or_default();
        assert_eq!(env.contains("_SECRETS"), id == "IngestFunction", "{id}");
        // The number index key reaches every function (ingest hashes the numbers it redacts),
        // through each function's own environment.
        assert!(env.contains("CALLHOOK_NUMBER_INDEX_KEY"), "{id}");
    }
    let globals = template["Globals"].to_string();
    assert!(!globals.contains("_SECRETS") && !globals.contains("_TOKENS"));
    assert!(!globals.contains("NUMBER_INDEX_KEY"));
}
