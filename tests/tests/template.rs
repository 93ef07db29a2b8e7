//! template.yaml and the function crates agree, and the template keeps its delivery shape:
//! every crate under `functions/` has its resource (and the reverse); the events table's stream
//! has ONE reader, the pipe, which puts keys (never bodies) of the canonical events on the
//! stack's bus; each stream function is invoked by one bus rule on the canonical type its
//! `main.rs` serves, with bounded retries and a failure queue at every stage; every role is
//! granted exactly what its code does; every alarm watches a resource of this stack; every log
//! group keeps logs for `LogRetentionDays`.
//!
//! The template is read only through `callhook_local::template::template()`: YAML tags such as
//! `!Ref X` arrive as one-key maps (`{"!Ref": "X"}`); the long forms (`Ref`, `Fn::GetAtt`,
//! `Fn::Sub`) are accepted too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::EventType;
use callhook_e2e::repo_root;
use callhook_local::template::template;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The canonical types a stream function serves (`unknown` events are only stored).
const CANONICAL: [EventType; 5] = [
    EventType::CallStarted,
    EventType::MidCall,
    EventType::CallEnded,
    EventType::CallAnalyzed,
    EventType::MessageReceived,
];

/// What the pipe tags its bus events with; the rules match it.
const BUS_SOURCE: &str = "callhook.events";

fn resources(template: &Value) -> &Map<String, Value> {
    template["Resources"].as_object().unwrap()
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

fn functions(template: &Value) -> Vec<(&String, &Value)> {
    of_type(template, "AWS::Serverless::Function")
}

fn handler(function: &Value) -> &str {
    function
        .pointer("/Properties/Handler")
        .and_then(Value::as_str)
        .unwrap()
}

/// Every function but ingest: the ones the bus invokes.
fn stream_functions(template: &Value) -> Vec<(&String, &Value)> {
    functions(template)
        .into_iter()
        .filter(|(_, f)| handler(f) != "ingest")
        .collect()
}

/// The argument of a one-key intrinsic map, short (`!Ref`) or long (`Ref`, `Fn::GetAtt`) form.
fn intrinsic<'a>(value: &'a Value, short: &str, long: &str) -> Option<&'a Value> {
    let map = value.as_object().filter(|m| m.len() == 1)?;
    map.get(short).or_else(|| map.get(long))
}

fn ref_of(value: &Value) -> Option<&str> {
    intrinsic(value, "!Ref", "Ref")?.as_str()
}

/// `!GetAtt A.B` (or `Fn::GetAtt: [A, B]`) as `"A.B"`.
fn get_att(value: &Value) -> Option<String> {
    match intrinsic(value, "!GetAtt", "Fn::GetAtt")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect::<Vec<_>>()
                .join("."),
        ),
        _ => None,
    }
}

fn sub(value: &Value) -> Option<&str> {
    intrinsic(value, "!Sub", "Fn::Sub")?.as_str()
}

/// The type of the resource `logical_id`, failing the test when the template has none.
fn type_of<'a>(template: &'a Value, logical_id: &str) -> &'a str {
    resources(template)
        .get(logical_id)
        .and_then(|r| r["Type"].as_str())
        .unwrap_or_else(|| panic!("no resource {logical_id} in the template"))
}

/// Calls `visit` with the JSON pointer of every value in `value`.
fn walk(value: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, value);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, &format!("{path}/{k}"), visit);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}/{i}"), visit);
            }
        }
        _ => {}
    }
}

/// A grant: (action, resource as `Logical.Attr` or `Logical`, condition as compact JSON).
type Grant = (String, String, Option<String>);

/// The grants of a list of policy documents; a wildcard or foreign resource, a Deny, or a
/// policy that is not a plain statement list (a SAM policy template, a managed policy) fails.
fn grants<'a>(documents: impl IntoIterator<Item = &'a Value>) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for document in documents {
        let statements = document["Statement"]
            .as_array()
            .unwrap_or_else(|| panic!("not a policy document with statements: {document}"));
        for statement in statements {
            // `!If [Condition, statement, !Ref AWS::NoValue]`: the statement, under its condition.
            let (statement, only_if) = match intrinsic(statement, "!If", "Fn::If") {
                Some(branches) => {
                    assert_eq!(ref_of(&branches[2]), Some("AWS::NoValue"), "{statement}");
                    (&branches[1], Some(branches[0].as_str().unwrap()))
                }
                None => (statement, None),
            };
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            let actions: Vec<String> = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
                other => panic!("unexpected Action {other}"),
            };
            let target = grant_target(&statement["Resource"]);
            let target = match only_if {
                Some(condition) => format!("{target} if {condition}"),
                None => target,
            };
            let condition = statement.get("Condition").map(Value::to_string);
            for action in actions {
                out.insert((action, target.clone(), condition.clone()));
            }
        }
    }
    out
}

/// A policy resource: `Logical.Attr`, `Logical` (a resource or a parameter), or
/// `If(Condition, a, b)` of those.
fn grant_target(resource: &Value) -> String {
    if let Some(branches) = intrinsic(resource, "!If", "Fn::If") {
        return format!(
            "If({}, {}, {})",
            branches[0].as_str().unwrap(),
            grant_target(&branches[1]),
            grant_target(&branches[2])
        );
    }
    get_att(resource)
        .or_else(|| ref_of(resource).map(str::to_owned))
        .unwrap_or_else(|| panic!("policy resource {resource} is not one of the stack's"))
}

fn function_grants(function: &Value) -> BTreeSet<Grant> {
    grants(
        function
            .pointer("/Properties/Policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    )
}

fn grant(action: &str, resource: &str) -> Grant {
    (action.to_owned(), resource.to_owned(), None)
}

/// The template's one pipe (there must be exactly one).
fn pipe(template: &Value) -> (&String, &Value) {
    let pipes = of_type(template, "AWS::Pipes::Pipe");
    assert_eq!(pipes.len(), 1, "one pipe");
    pipes[0]
}

/// A function's events, by name.
fn events(function: &Value) -> &Map<String, Value> {
    function
        .pointer("/Properties/Events")
        .and_then(Value::as_object)
        .unwrap()
}

#[test]
fn every_function_runs_the_one_bootstrap_built_once_as_its_handler() {
    let template = template().unwrap();
    let functions = functions(&template);
    let handlers: Vec<String> = functions
        .iter()
        .map(|(_, r)| handler(r).to_owned())
        .collect();
    let mut expected = callhook::handlers::Function::handlers();
    let mut found = handlers.clone();
    expected.sort();
    found.sort();
    assert_eq!(
        found, expected,
        "one function per handler the bootstrap serves"
    );

    // SAM builds functions whose code, runtime, architecture and build metadata are equal once,
    // and copies the result to each: one cargo build, one link.
    for (id, function) in &functions {
        assert_eq!(
            function["Metadata"],
            json!({"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "callhook-lambda"}}),
            "{id}"
        );
        assert_eq!(
            function.pointer("/Properties/CodeUri"),
            Some(&json!(".")),
            "{id}"
        );
        for property in ["Runtime", "Architectures"] {
            assert_eq!(
                function["Properties"].get(property),
                None,
                "{id}: {property} is global"
            );
        }
    }
    let manifest =
        std::fs::read_to_string(repo_root().join("functions/lambda/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"callhook-lambda\""));
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals.get("Handler"), None, "each function names its own");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
}

#[test]
fn the_events_stream_has_exactly_one_reader_the_pipe() {
    let template = template().unwrap();
    assert_eq!(
        template.pointer("/Resources/EventsTable/Properties/StreamSpecification/StreamViewType"),
        Some(&json!("NEW_IMAGE"))
    );

    assert!(
        of_type(&template, "AWS::Lambda::EventSourceMapping").is_empty(),
        "no event source mapping: the pipe is the stream's one reader"
    );
    for (id, function) in functions(&template) {
        for (name, event) in function
            .pointer("/Properties/Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            assert!(
                !matches!(event["Type"].as_str(), Some("DynamoDB" | "Kinesis")),
                "{id}.{name} reads a stream itself: the events stream has one reader, EventsPipe \
                 (a function is invoked by its bus rule instead)"
            );
        }
    }

    // Every mention of the stream, whatever the form (`!GetAtt`, `Fn::GetAtt: [..]`, or inside
    // a `!Sub` string), by the path of the value holding it.
    let mut mentions = Vec::new();
    walk(&template, "", &mut |path, value| {
        let mentioned = match value {
            Value::String(s) => s.contains("EventsTable.StreamArn"),
            Value::Array(_) => *value == json!(["EventsTable", "StreamArn"]),
            _ => false,
        };
        if mentioned {
            // `/…/Source/!GetAtt` is the value at `/…/Source`.
            let (holder, last) = path.rsplit_once('/').unwrap();
            let intrinsic = last.starts_with('!') || last.starts_with("Fn::");
            mentions.push(if intrinsic { holder } else { path }.to_owned());
        }
    });
    assert_eq!(
        mentions,
        [
            "/Resources/EventsPipe/Properties/Source",
            "/Resources/EventsPipeRole/Properties/Policies/0/PolicyDocument/Statement/0/Resource",
        ],
        "DynamoDB Streams allow two readers per shard: the pipe reads, and only its role may"
    );
}

#[test]
fn the_pipe_puts_the_keys_of_inserted_canonical_events_on_the_stacks_bus() {
    let template = template().unwrap();
    let (pipe_id, pipe) = pipe(&template);
    assert_eq!(pipe_id, "EventsPipe");
    let props = &pipe["Properties"];
    assert_eq!(sub(&props["Name"]), Some("${AWS::StackName}-events"));
    assert_eq!(
        get_att(&props["RoleArn"]).as_deref(),
        Some("EventsPipeRole.Arn")
    );
    assert_eq!(
        get_att(&props["Source"]).as_deref(),
        Some("EventsTable.StreamArn")
    );
    assert_eq!(get_att(&props["Target"]).as_deref(), Some("EventBus.Arn"));
    assert_eq!(type_of(&template, "EventBus"), "AWS::Events::EventBus");
    assert_eq!(
        sub(&template["Resources"]["EventBus"]["Properties"]["Name"]),
        Some("${AWS::StackName}-callhook")
    );

    // One filter: INSERTs of the canonical types (parts, bodies and unknown events stay put).
    let filters = props
        .pointer("/SourceParameters/FilterCriteria/Filters")
        .and_then(Value::as_array)
        .unwrap();
    assert_eq!(filters.len(), 1);
    let pattern: Value = serde_json::from_str(filters[0]["Pattern"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["eventName"], json!(["INSERT"]));
    let types: BTreeSet<&str> = pattern
        .pointer("/dynamodb/NewImage/type/S")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        CANONICAL
            .iter()
            .map(|t| t.as_str())
            .collect::<BTreeSet<_>>()
    );

    // Bounded retries, bisection, and a dead-letter queue for what still fails.
    let stream = &props["SourceParameters"]["DynamoDBStreamParameters"];
    assert_eq!(stream["StartingPosition"], "TRIM_HORIZON");
    let batch = stream["BatchSize"].as_u64().unwrap();
    assert!(
        (1..=10).contains(&batch),
        "an event bus target takes at most 10 events a batch (one PutEvents)"
    );
    assert_eq!(stream["OnPartialBatchItemFailure"], "AUTOMATIC_BISECT");
    let retries = stream["MaximumRetryAttempts"].as_i64().unwrap();
    assert!((0..=10_000).contains(&retries), "bounded pipe retries");
    let age = stream["MaximumRecordAgeInSeconds"].as_i64().unwrap();
    assert!(
        (60..=86_400).contains(&age),
        "records are given up within the stream's 24 h"
    );
    assert_eq!(
        get_att(&stream["DeadLetterConfig"]["Arn"]).as_deref(),
        Some("FailureQueue.Arn")
    );

    // The bus event: source and detail-type the rules match, keys only.
    let bus = &props["TargetParameters"]["EventBridgeEventBusParameters"];
    assert_eq!(bus["Source"], BUS_SOURCE);
    assert_eq!(bus["DetailType"], "$.dynamodb.NewImage.type.S");
    let input: Value =
        serde_json::from_str(props["TargetParameters"]["InputTemplate"].as_str().unwrap())
            .expect("the input template is a JSON object with quoted placeholders");
    assert_eq!(
        input,
        json!({
            "id": "<$.dynamodb.NewImage.dedupe_key.S>",
            "pk": "<$.dynamodb.Keys.pk.S>",
            "sk": "<$.dynamodb.Keys.sk.S>",
            "type": "<$.dynamodb.NewImage.type.S>",
            "provider": "<$.dynamodb.NewImage.provider.S>",
            "call_id": "<$.dynamodb.NewImage.call_id.S>",
            "received_at": "<$.dynamodb.NewImage.received_at.N>",
        }),
        "keys only: a bus event is capped at 256 KB, a body is not"
    );

    assert_eq!(props["LogConfiguration"]["Level"], "ERROR");
    let log_group =
        get_att(&props["LogConfiguration"]["CloudwatchLogsLogDestination"]["LogGroupArn"]).unwrap();
    assert_eq!(log_group, "EventsPipeLogGroup.Arn");
}

#[test]
fn each_stream_function_is_invoked_by_one_bus_rule_on_the_type_its_main_serves() {
    let template = template().unwrap();
    let mut served = BTreeSet::new();
    for (id, function) in stream_functions(&template) {
        let handler = handler(function);
        let events = events(function);
        assert_eq!(events.len(), 1, "{id}: one event source, its bus rule");
        let rule = &events["Bus"];
        assert_eq!(rule["Type"], "EventBridgeRule", "{id}");
        let rule = &rule["Properties"];
        assert_eq!(ref_of(&rule["EventBusName"]), Some("EventBus"), "{id}");
        assert_eq!(
            sub(&rule["RuleName"]),
            Some(format!("${{AWS::StackName}}-{handler}").as_str()),
            "{id}"
        );
        assert_eq!(rule["Pattern"]["source"], json!([BUS_SOURCE]), "{id}");
        let detail_types = rule["Pattern"]["detail-type"].as_array().unwrap();
        assert_eq!(detail_types.len(), 1, "{id}: one type per function");
        let event_type = EventType::parse(detail_types[0].as_str().unwrap())
            .filter(|t| CANONICAL.contains(t))
            .unwrap_or_else(|| panic!("{id}: its rule matches no canonical type"));
        assert!(
            served.insert(event_type),
            "{id}: {event_type:?} served twice"
        );
        assert_eq!(
            callhook::handlers::Function::from_handler(handler),
            Some(callhook::handlers::Function::Merge(event_type)),
            "{id}: its handler merges the type its rule selects"
        );

        // Delivery to Lambda: EventBridge's retries, then the failure queue.
        let retry = &rule["RetryPolicy"];
        assert!(
            (0..=185).contains(&retry["MaximumRetryAttempts"].as_u64().unwrap()),
            "{id}"
        );
        assert!(
            (60..=86_400).contains(&retry["MaximumEventAgeInSeconds"].as_u64().unwrap()),
            "{id}"
        );
        assert_eq!(
            get_att(&rule["DeadLetterConfig"]["Arn"]).as_deref(),
            Some("FailureQueue.Arn"),
            "{id}"
        );

        // The asynchronous invocation: Lambda's retries, then the failure queue.
        let invoke = &function["Properties"]["EventInvokeConfig"];
        assert!(
            (0..=2).contains(&invoke["MaximumRetryAttempts"].as_u64().unwrap()),
            "{id}: bounded retries"
        );
        assert!(
            (60..=21_600).contains(&invoke["MaximumEventAgeInSeconds"].as_u64().unwrap()),
            "{id}"
        );
        let on_failure = &invoke["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"], "SQS", "{id}");
        assert_eq!(
            get_att(&on_failure["Destination"]).as_deref(),
            Some("FailureQueue.Arn"),
            "{id}"
        );

        assert_eq!(
            ref_of(&function["Properties"]["Environment"]["Variables"]["CALLHOOK_EVENT_BUS"]),
            Some("EventBus"),
            "{id} publishes on the stack's bus"
        );
    }
    assert_eq!(
        served,
        CANONICAL.into_iter().collect::<BTreeSet<_>>(),
        "one stream function per canonical type (unknown events are only stored)"
    );
}

#[test]
fn each_role_is_granted_exactly_what_its_code_does() {
    let template = template().unwrap();
    let resources = resources(&template);
    assert_eq!(
        function_grants(&resources["IngestFunction"]),
        BTreeSet::from([
            grant("dynamodb:PutItem", "EventsTable.Arn"),
            grant("dynamodb:GetItem", "EventsTable.Arn"),
            // The provider secret, the stack's or the one given, and its key if it has its own.
            grant(
                "secretsmanager:GetSecretValue",
                "If(CreatesProviderSecret, ProviderSecret, ProviderSecretArn)"
            ),
            (
                "kms:Decrypt".to_owned(),
                "ProviderSecretKmsKeyArn if HasProviderSecretKey".to_owned(),
                Some(
                    json!({"StringEquals": {"kms:ViaService": {"!Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}})
                        .to_string()
                )
            ),
        ])
    );

    let failures_only =
        json!({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["failures"]}});
    let stream = BTreeSet::from([
        // The event item the bus event names, and the parts of its body.
        grant("dynamodb:GetItem", "EventsTable.Arn"),
        grant("dynamodb:Query", "EventsTable.Arn"),
        // Permanent failures, under pk `failures` only.
        (
            "dynamodb:PutItem".to_owned(),
            "EventsTable.Arn".to_owned(),
            Some(failures_only.to_string()),
        ),
        grant("dynamodb:GetItem", "CallsTable.Arn"),
        grant("dynamodb:PutItem", "CallsTable.Arn"),
        grant("dynamodb:Query", "CallsTable.Arn"),
        grant("dynamodb:DeleteItem", "CallsTable.Arn"),
        grant("events:PutEvents", "EventBus.Arn"),
        grant("sqs:SendMessage", "FailureQueue.Arn"),
    ]);
    for (id, function) in stream_functions(&template) {
        assert_eq!(function_grants(function), stream, "{id}");
    }

    let role = &resources["EventsPipeRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().unwrap().len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({"Service": "pipes.amazonaws.com"})
    );
    assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    assert_eq!(
        ref_of(&trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"]),
        Some("AWS::AccountId"),
        "only this account's pipes assume the role"
    );
    assert!(role["Properties"].get("ManagedPolicyArns").is_none());
    let documents = role["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["PolicyDocument"]);
    assert_eq!(
        grants(documents),
        BTreeSet::from([
            grant("dynamodb:DescribeStream", "EventsTable.StreamArn"),
            grant("dynamodb:GetRecords", "EventsTable.StreamArn"),
            grant("dynamodb:GetShardIterator", "EventsTable.StreamArn"),
            grant("dynamodb:ListStreams", "EventsTable.StreamArn"),
            grant("events:PutEvents", "EventBus.Arn"),
            grant("sqs:SendMessage", "FailureQueue.Arn"),
            grant("logs:CreateLogStream", "EventsPipeLogGroup.Arn"),
            grant("logs:PutLogEvents", "EventsPipeLogGroup.Arn"),
        ])
    );
}

#[test]
fn the_failure_queue_takes_dead_letters_from_this_stacks_rules_only() {
    let template = template().unwrap();
    let bus = sub(&template["Resources"]["EventBus"]["Properties"]["Name"]).unwrap();
    let expected: BTreeSet<String> = stream_functions(&template)
        .iter()
        .map(|(_, f)| {
            let rule = sub(&events(f)["Bus"]["Properties"]["RuleName"]).unwrap();
            format!("arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{bus}/{rule}")
        })
        .collect();
    assert_eq!(expected.len(), 5);

    let policies = of_type(&template, "AWS::SQS::QueuePolicy");
    assert_eq!(policies.len(), 1);
    let props = &policies[0].1["Properties"];
    let queues: Vec<_> = props["Queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(ref_of)
        .collect();
    assert_eq!(queues, [Some("FailureQueue")]);
    assert_eq!(type_of(&template, "FailureQueue"), "AWS::SQS::Queue");
    let statements = props["PolicyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(
        statement["Principal"],
        json!({"Service": "events.amazonaws.com"})
    );
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(
        get_att(&statement["Resource"]).as_deref(),
        Some("FailureQueue.Arn")
    );
    let conditions = statement["Condition"].as_object().unwrap();
    assert_eq!(conditions.len(), 1, "one condition: the rules' ARNs");
    let sources: BTreeSet<String> = conditions["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| sub(a).unwrap().to_owned())
        .collect();
    assert_eq!(sources, expected);
}

/// A metric's dimensions, as (name, value).
type Dimensions<'a> = Vec<(&'a str, &'a Value)>;

/// (name, value) of each dimension of a metric.
fn dimensions(metric: &Value) -> Dimensions<'_> {
    metric["Dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| (d["Name"].as_str().unwrap(), &d["Value"]))
        .collect()
}

/// (namespace, metric name, dimensions) of each metric an alarm reads.
fn alarm_metrics(alarm: &Value) -> Vec<(&str, &str, Dimensions<'_>)> {
    let props = &alarm["Properties"];
    if let Some(metrics) = props["Metrics"].as_array() {
        metrics
            .iter()
            .filter_map(|m| m.pointer("/MetricStat/Metric"))
            .map(|m| {
                (
                    m["Namespace"].as_str().unwrap(),
                    m["MetricName"].as_str().unwrap(),
                    dimensions(m),
                )
            })
            .collect()
    } else {
        vec![(
            props["Namespace"].as_str().unwrap(),
            props["MetricName"].as_str().unwrap(),
            dimensions(props),
        )]
    }
}

#[test]
fn every_alarm_watches_a_resource_of_this_stack() {
    let template = template().unwrap();
    let bus = sub(&template["Resources"]["EventBus"]["Properties"]["Name"]).unwrap();
    let rules: BTreeSet<&str> = stream_functions(&template)
        .iter()
        .map(|(_, f)| sub(&events(f)["Bus"]["Properties"]["RuleName"]).unwrap())
        .collect();
    let has_http_api = functions(&template)
        .iter()
        .any(|(_, f)| events(f).values().any(|e| e["Type"] == "HttpApi"));

    let mut errors_watched = BTreeSet::new();
    let mut rules_watched = BTreeSet::new();
    let mut watched = BTreeSet::new();
    for (id, alarm) in of_type(&template, "AWS::CloudWatch::Alarm") {
        let props = &alarm["Properties"];
        assert_eq!(props["TreatMissingData"], "notBreaching", "{id}");
        let actions = intrinsic(&props["AlarmActions"], "!If", "Fn::If").unwrap();
        assert_eq!(actions[0], "HasAlarmTopic", "{id}");
        assert_eq!(ref_of(&actions[1][0]), Some("AlarmTopicArn"), "{id}");

        for (namespace, metric, dims) in alarm_metrics(alarm) {
            let dim = |name: &str| {
                dims.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("{id}: no {name} dimension"))
            };
            let names: BTreeSet<&str> = dims.iter().map(|(n, _)| *n).collect();
            match (namespace, metric) {
                ("AWS/Lambda", "Errors") => {
                    assert_eq!(names, BTreeSet::from(["FunctionName"]), "{id}");
                    let function = ref_of(dim("FunctionName")).unwrap();
                    assert_eq!(
                        type_of(&template, function),
                        "AWS::Serverless::Function",
                        "{id}"
                    );
                    errors_watched.insert(function.to_owned());
                }
                ("AWS/ApiGateway", "5xx") => {
                    assert_eq!(names, BTreeSet::from(["ApiId"]), "{id}");
                    // SAM's implicit HTTP API, made for the HttpApi events.
                    assert_eq!(ref_of(dim("ApiId")), Some("ServerlessHttpApi"), "{id}");
                    assert!(has_http_api, "{id}: no function has an HttpApi event");
                    watched.insert("api");
                }
                ("AWS/EventBridge/Pipes", "ExecutionFailed") => {
                    assert_eq!(names, BTreeSet::from(["PipeName"]), "{id}");
                    let pipe = ref_of(dim("PipeName")).unwrap();
                    assert_eq!(type_of(&template, pipe), "AWS::Pipes::Pipe", "{id}");
                    watched.insert("pipe");
                }
                ("AWS/Events", "FailedInvocations") => {
                    assert_eq!(names, BTreeSet::from(["EventBusName", "RuleName"]), "{id}");
                    assert_eq!(sub(dim("EventBusName")), Some(bus), "{id}");
                    let rule = sub(dim("RuleName")).unwrap();
                    assert!(rules.contains(rule), "{id}: {rule} is no rule of the stack");
                    rules_watched.insert(rule);
                }
                ("AWS/SQS", "ApproximateNumberOfMessagesVisible") => {
                    assert_eq!(names, BTreeSet::from(["QueueName"]), "{id}");
                    let queue = get_att(dim("QueueName")).unwrap();
                    let queue = queue.strip_suffix(".QueueName").unwrap();
                    assert_eq!(type_of(&template, queue), "AWS::SQS::Queue", "{id}");
                    assert_eq!(props["Statistic"], "Maximum", "{id}");
                    watched.insert("queue");
                }
                ("callhook", "PermanentFailures") => {
                    assert!(
                        names.is_empty(),
                        "{id}: the metric filters publish no dimension"
                    );
                    watched.insert("permanent");
                }
                other => panic!("{id}: unexpected metric {other:?}"),
            }
        }
    }
    let all_functions: BTreeSet<String> = functions(&template)
        .iter()
        .map(|(id, _)| (*id).clone())
        .collect();
    assert_eq!(
        errors_watched, all_functions,
        "an Errors alarm per function"
    );
    assert_eq!(rules_watched, rules, "every rule's FailedInvocations");
    assert_eq!(
        watched,
        BTreeSet::from(["api", "pipe", "queue", "permanent"]),
        "5xx, pipe, failure queue and permanent failure alarms"
    );

    // The permanent-failure metric: one filter per stream function's log group.
    let mut filtered = BTreeSet::new();
    for (id, filter) in of_type(&template, "AWS::Logs::MetricFilter") {
        let props = &filter["Properties"];
        assert_eq!(
            props["FilterPattern"], r#"{ $.fields.outcome = "failed" }"#,
            "{id}"
        );
        assert_eq!(
            props["MetricTransformations"],
            json!([{
                "MetricNamespace": "callhook",
                "MetricName": "PermanentFailures",
                "MetricValue": "1",
                "Unit": "Count",
            }]),
            "{id}"
        );
        filtered.insert(ref_of(&props["LogGroupName"]).unwrap().to_owned());
    }
    let stream_log_groups: BTreeSet<String> = stream_functions(&template)
        .iter()
        .map(|(_, f)| {
            ref_of(&f["Properties"]["LoggingConfig"]["LogGroup"])
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(filtered, stream_log_groups);
}

#[test]
fn every_function_and_the_pipe_log_to_their_own_group_kept_for_log_retention_days() {
    let template = template().unwrap();
    let parameter = &template["Parameters"]["LogRetentionDays"];
    assert_eq!(parameter["Type"], "Number");
    assert_eq!(parameter["Default"], 30);
    let cloudwatch: Vec<u64> = vec![
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
        2922, 3288, 3653,
    ];
    assert_eq!(parameter["AllowedValues"], json!(cloudwatch));

    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for (id, function) in functions(&template) {
        let group = ref_of(&function["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: no LoggingConfig.LogGroup"));
        groups.insert(id.clone(), group.to_owned());
    }
    let (pipe_id, pipe) = pipe(&template);
    let pipe_group = get_att(
        &pipe["Properties"]["LogConfiguration"]["CloudwatchLogsLogDestination"]["LogGroupArn"],
    )
    .unwrap();
    groups.insert(
        pipe_id.clone(),
        pipe_group.strip_suffix(".Arn").unwrap().to_owned(),
    );

    let distinct: BTreeSet<&String> = groups.values().collect();
    assert_eq!(
        distinct.len(),
        groups.len(),
        "one log group each: {groups:?}"
    );
    for (owner, group) in &groups {
        assert_eq!(type_of(&template, group), "AWS::Logs::LogGroup", "{owner}");
        assert_eq!(
            ref_of(&template["Resources"][group]["Properties"]["RetentionInDays"]),
            Some("LogRetentionDays"),
            "{owner}'s log group {group}"
        );
    }
}

#[test]
fn the_outputs_name_the_bus_and_the_failure_queue() {
    let template = template().unwrap();
    assert_eq!(
        ref_of(&template["Outputs"]["EventBusName"]["Value"]),
        Some("EventBus")
    );
    assert_eq!(
        ref_of(&template["Outputs"]["FailureQueueUrl"]["Value"]),
        Some("FailureQueue")
    );
}

#[test]
fn credentials_live_in_a_secret_only_ingest_reads_never_in_an_environment() {
    let template = template().unwrap();
    // The parameters only seed the secret the stack creates; they are NoEcho and cannot break
    // out of its JSON.
    let seed = sub(&template["Resources"]["ProviderSecret"]["Properties"]["SecretString"]).unwrap();
    let seed: Value = serde_json::from_str(seed).unwrap();
    let credentials: Vec<(&String, &Value)> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with("Secrets") || name.ends_with("Tokens"))
        .collect();
    assert_eq!(
        credentials.len(),
        6 + 5,
        "three providers' secrets and tokens, five more's secrets"
    );
    for (name, parameter) in credentials {
        assert_eq!(parameter["NoEcho"], true, "{name}");
        assert_eq!(parameter["AllowedPattern"], r#"^[^"\\]*$"#, "{name}");
        let (provider, kind) =
            name.split_at(name.len() - if name.ends_with("Secrets") { 7 } else { 6 });
        let variable = format!(
            "CALLHOOK_{}_{}",
            provider.to_uppercase(),
            kind.to_uppercase()
        );
        assert_eq!(seed[&variable], format!("${{{name}}}"), "{variable}");
    }
    // Filled in, the secret the stack creates is what ingest reads.
    let mut filled = sub(&template["Resources"]["ProviderSecret"]["Properties"]["SecretString"])
        .unwrap()
        .to_owned();
    for name in seed.as_object().unwrap().values() {
        let name = name.as_str().unwrap();
        filled = filled.replace(name, &format!("value-of-{}", &name[2..name.len() - 1]));
    }
    let vars = callhook::secrets::secret_vars(&filled).unwrap();
    assert_eq!(vars.len(), 11);
    assert!(vars.contains(&("CALLHOOK_VOX_TOKENS".into(), "value-of-VoxTokens".into())));
    assert_eq!(
        template["Resources"]["ProviderSecret"]["Condition"],
        "CreatesProviderSecret"
    );
    assert_eq!(template["Parameters"]["NumberIndexKey"]["NoEcho"], true);
    for (id, resource) in functions(&template) {
        let env = resource
            .pointer("/Properties/Environment/Variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        assert!(
            !env.keys()
                .any(|k| k.ends_with("_SECRETS") || k.ends_with("_TOKENS")),
            "{id}: credentials in the environment"
        );
        assert_eq!(
            env.contains_key("CALLHOOK_PROVIDER_SECRET_ARN"),
            id == "IngestFunction",
            "{id}"
        );
        // The number index key reaches every function (ingest hashes the numbers it redacts),
        // through each function's own environment.
        assert!(env.contains_key("CALLHOOK_NUMBER_INDEX_KEY"), "{id}");
    }
    let ingest_env =
        &template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        grant_target(&ingest_env["CALLHOOK_PROVIDER_SECRET_ARN"]),
        "If(CreatesProviderSecret, ProviderSecret, ProviderSecretArn)"
    );
    assert_eq!(
        ref_of(&ingest_env["CALLHOOK_SECRET_REFRESH_SECONDS"]),
        Some("SecretRefreshSeconds")
    );
    let globals = template["Globals"].to_string();
    assert!(!globals.contains("_SECRETS") && !globals.contains("_TOKENS"));
    assert!(!globals.contains("NUMBER_INDEX_KEY") && !globals.contains("SECRET"));
}

#[test]
fn an_unauthenticated_source_needs_allow_unauthenticated() {
    let template = template().unwrap();
    let parameter = &template["Parameters"]["AllowUnauthenticated"];
    assert_eq!(parameter["Default"], "false");
    assert_eq!(parameter["AllowedValues"], json!(["false", "true"]));
    // Every auth parameter that offers `none` is asserted against it while the guard is off.
    let open_to_none: BTreeSet<String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, p)| {
            p["AllowedValues"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("none")))
        })
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(
        open_to_none,
        callhook::provider::REGISTRY
            .iter()
            .map(|p| {
                let name = p.name();
                let display = match name {
                    "clawops" => "ClawOps".to_owned(),
                    "elevenlabs" => "ElevenLabs".to_owned(),
                    _ => name[..1].to_uppercase() + &name[1..],
                };
                format!("{display}Auth")
            })
            .collect::<BTreeSet<_>>()
    );
    let rule = &template["Rules"]["UnauthenticatedNeedsAllowUnauthenticated"];
    let condition = intrinsic(&rule["RuleCondition"], "!Equals", "Fn::Equals").unwrap();
    assert_eq!(ref_of(&condition[0]), Some("AllowUnauthenticated"));
    assert_eq!(condition[1], "false");
    let guarded: BTreeSet<String> = rule["Assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let not = intrinsic(&a["Assert"], "!Not", "Fn::Not").unwrap();
            let equals = intrinsic(&not[0], "!Equals", "Fn::Equals").unwrap();
            assert_eq!(equals[1], "none");
            ref_of(&equals[0]).unwrap().to_owned()
        })
        .collect();
    assert_eq!(guarded, open_to_none);
    // And ingest enforces it too (a stack configured by hand, or the local one).
    let env = &resources(&template)["IngestFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        ref_of(&env["CALLHOOK_ALLOW_UNAUTHENTICATED"]),
        Some("AllowUnauthenticated")
    );
}

#[test]
fn functions_log_json_through_lambdas_logging_controls_at_an_allow_listed_level() {
    let template = template().unwrap();
    let level = &template["Parameters"]["LogLevel"];
    assert_eq!(
        level["AllowedValues"],
        json!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])
    );
    assert_eq!(level["Default"], "INFO");
    let system = &template["Parameters"]["SystemLogLevel"];
    assert_eq!(system["AllowedValues"], json!(["DEBUG", "INFO", "WARN"]));
    for (id, function) in functions(&template) {
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        assert_eq!(
            ref_of(&logging["ApplicationLogLevel"]),
            Some("LogLevel"),
            "{id}"
        );
        assert_eq!(
            ref_of(&logging["SystemLogLevel"]),
            Some("SystemLogLevel"),
            "{id}"
        );
    }
    // No free-text filter reaches the functions: the level comes only from LoggingConfig.
    assert!(
        !serde_json::to_string(&template)
            .unwrap()
            .contains("RUST_LOG")
    );
}

#[test]
fn the_webhook_route_is_throttled_and_ingest_bounded() {
    let template = template().unwrap();
    let route = &template["Globals"]["HttpApi"]["DefaultRouteSettings"];
    assert_eq!(ref_of(&route["ThrottlingRateLimit"]), Some("ApiRateLimit"));
    assert_eq!(
        ref_of(&route["ThrottlingBurstLimit"]),
        Some("ApiBurstLimit")
    );
    for name in ["ApiRateLimit", "ApiBurstLimit", "IngestConcurrency"] {
        let parameter = &template["Parameters"][name];
        assert_eq!(parameter["Type"], "Number", "{name}");
        assert!(
            parameter["Default"].as_u64().is_some_and(|d| d > 0),
            "{name}"
        );
    }
    let ingest = &resources(&template)["IngestFunction"]["Properties"];
    let reserved = intrinsic(&ingest["ReservedConcurrentExecutions"], "!If", "Fn::If").unwrap();
    assert_eq!(reserved[0], "BoundsIngest");
    assert_eq!(ref_of(&reserved[1]), Some("IngestConcurrency"));
}
