//! What the local stack and the tests read from `template.yaml`, so they run exactly what AWS
//! runs: the tables' keys, indexes and stream, the pipe that reads the stream (filter, input
//! transformation, batch size), and each function's rule on the bus with its asynchronous
//! invocation settings. One source of truth: the template.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use callhook::error::{Error, Result};
use callhook::event::EventType;
use serde_json::Value;

/// The template this build was made with.
pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// The logical ids of the tables in the template.
pub const EVENTS_TABLE: &str = "EventsTable";
pub const CALLS_TABLE: &str = "CallsTable";

/// The template as JSON (CloudFormation tags such as `!Ref` become their tagged values).
pub fn template() -> Result<Value> {
    let yaml: serde_norway::Value = serde_norway::from_str(TEMPLATE)
        .map_err(|e| Error::Config(format!("template.yaml: {e}")))?;
    serde_json::to_value(yaml).map_err(|e| Error::Config(format!("template.yaml: {e}")))
}

fn resource<'a>(template: &'a Value, logical_id: &str) -> Result<&'a Value> {
    template
        .pointer(&format!("/Resources/{logical_id}"))
        .ok_or_else(|| Error::Config(format!("template.yaml has no resource {logical_id}")))
}

fn text<'a>(value: &'a Value, pointer: &str) -> Result<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Config(format!("template.yaml: {pointer} is missing")))
}

/// A table definition as the template states it, ready for `CreateTable`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub attributes: Vec<AttributeDefinition>,
    pub keys: Vec<KeySchemaElement>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub stream: Option<StreamViewType>,
}

impl TableDef {
    pub fn from_template(logical_id: &str) -> Result<Self> {
        let template = template()?;
        let props = resource(&template, logical_id)?
            .get("Properties")
            .ok_or_else(|| Error::Config(format!("{logical_id} has no Properties")))?;
        let attributes = props["AttributeDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(text(a, "/AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(text(a, "/AttributeType")?))
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let keys = key_schema(&props["KeySchema"])?;
        let indexes = props["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|gsi| {
                let attributes: Option<Vec<String>> = gsi
                    .pointer("/Projection/NonKeyAttributes")
                    .and_then(Value::as_array)
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    });
                let projection = Projection::builder()
                    .projection_type(ProjectionType::from(text(
                        gsi,
                        "/Projection/ProjectionType",
                    )?))
                    .set_non_key_attributes(attributes)
                    .build();
                GlobalSecondaryIndex::builder()
                    .index_name(text(gsi, "/IndexName")?)
                    .set_key_schema(Some(key_schema(&gsi["KeySchema"])?))
                    .projection(projection)
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = props
            .pointer("/StreamSpecification/StreamViewType")
            .and_then(Value::as_str)
            .map(StreamViewType::from);
        Ok(Self {
            attributes,
            keys,
            indexes,
            stream,
        })
    }

    /// Creates the table (on-demand, as in the template) unless it exists.
    pub async fn create(&self, client: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(self.attributes.clone()))
            .set_key_schema(Some(self.keys.clone()));
        if !self.indexes.is_empty() {
            request = request.set_global_secondary_indexes(Some(self.indexes.clone()));
        }
        if let Some(view) = &self.stream {
            let spec = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view.clone())
                .build();
            request = request.stream_specification(spec.map_err(|e| Error::Config(e.to_string()))?);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(callhook::store::storage(e)),
        }
    }
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "/AttributeName")?)
                .key_type(KeyType::from(text(k, "/KeyType")?))
                .build()
                .map_err(|e| Error::Config(e.to_string()))
        })
        .collect()
}

/// Creates both tables of the template under the given names.
pub async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    events: &str,
    calls: &str,
) -> Result<()> {
    TableDef::from_template(EVENTS_TABLE)?
        .create(client, events)
        .await?;
    TableDef::from_template(CALLS_TABLE)?
        .create(client, calls)
        .await
}

/// The pipe that reads the events table's stream, as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeDef {
    pub logical_id: String,
    /// The filter patterns (a record passes when any one matches).
    pub patterns: Vec<Value>,
    /// The input transformation of each record into the bus event's detail.
    pub input_template: String,
    /// The bus event's `source` and `detail-type` (either may be a `$.` path into the record).
    pub source: String,
    pub detail_type: String,
    pub batch_size: usize,
    pub maximum_retry_attempts: u32,
    pub has_dead_letter_queue: bool,
}

/// One function's rule on the stack's bus, with its asynchronous invocation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    /// The function's logical id.
    pub function: String,
    /// The function's `Handler` (`call-started`, ...): which function the one bootstrap runs as.
    pub handler: String,
    /// The canonical type the function serves (from its handler).
    pub event_type: EventType,
    pub pattern: Value,
    /// Lambda's retries of a failed asynchronous invocation (`EventInvokeConfig`; 2 when unset).
    pub maximum_retry_attempts: u32,
    pub has_on_failure_destination: bool,
    pub has_dead_letter_queue: bool,
    pub has_retry_policy: bool,
}

/// Every `AWS::Pipes::Pipe` of the template.
pub fn pipes() -> Result<Vec<PipeDef>> {
    let template = template()?;
    let mut pipes = Vec::new();
    for (logical_id, resource) in template["Resources"].as_object().into_iter().flatten() {
        if resource["Type"] != "AWS::Pipes::Pipe" {
            continue;
        }
        let props = &resource["Properties"];
        let source = props.pointer("/SourceParameters/DynamoDBStreamParameters");
        let bus = props.pointer("/TargetParameters/EventBridgeEventBusParameters");
        pipes.push(PipeDef {
            logical_id: logical_id.clone(),
            patterns: filter_patterns(
                logical_id,
                props.pointer("/SourceParameters/FilterCriteria/Filters"),
            )?,
            input_template: text(props, "/TargetParameters/InputTemplate")?.to_owned(),
            source: bus
                .and_then(|b| b["Source"].as_str())
                .unwrap_or_default()
                .to_owned(),
            detail_type: bus
                .and_then(|b| b["DetailType"].as_str())
                .unwrap_or_default()
                .to_owned(),
            batch_size: source.and_then(|s| s["BatchSize"].as_u64()).unwrap_or(100) as usize,
            maximum_retry_attempts: source
                .and_then(|s| s["MaximumRetryAttempts"].as_u64())
                .unwrap_or(0) as u32,
            has_dead_letter_queue: source
                .and_then(|s| s.pointer("/DeadLetterConfig/Arn"))
                .is_some(),
        });
    }
    Ok(pipes)
}

/// The one pipe of the template.
pub fn pipe() -> Result<PipeDef> {
    let mut pipes = pipes()?;
    match pipes.len() {
        1 => Ok(pipes.remove(0)),
        n => Err(Error::Config(format!(
            "template.yaml declares {n} pipes; the local stack runs exactly one"
        ))),
    }
}

fn filter_patterns(logical_id: &str, filters: Option<&Value>) -> Result<Vec<Value>> {
    filters
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let text = f["Pattern"].as_str().unwrap_or_default();
            serde_json::from_str(text)
                .map_err(|e| Error::Config(format!("{logical_id} filter: {e}")))
        })
        .collect()
}

/// Every `EventBridgeRule` event of every function in the template.
pub fn rules() -> Result<Vec<RuleDef>> {
    let template = template()?;
    let mut rules = Vec::new();
    for (logical_id, resource) in template["Resources"].as_object().into_iter().flatten() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let handler = resource
            .pointer("/Properties/Handler")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let invoke = resource.pointer("/Properties/EventInvokeConfig");
        for event in resource
            .pointer("/Properties/Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
        {
            if event["Type"] != "EventBridgeRule" {
                continue;
            }
            let props = &event["Properties"];
            let event_type = match callhook::handlers::Function::from_handler(handler) {
                Some(callhook::handlers::Function::Merge(event_type)) => event_type,
                _ => {
                    return Err(Error::Config(format!(
                        "{logical_id}: its handler {handler:?} merges no canonical type"
                    )));
                }
            };
            rules.push(RuleDef {
                function: logical_id.clone(),
                handler: handler.to_owned(),
                event_type,
                pattern: props["Pattern"].clone(),
                maximum_retry_attempts: invoke
                    .and_then(|i| i["MaximumRetryAttempts"].as_u64())
                    .unwrap_or(2) as u32,
                has_on_failure_destination: invoke
                    .and_then(|i| i.pointer("/DestinationConfig/OnFailure/Destination"))
                    .is_some(),
                has_dead_letter_queue: props.pointer("/DeadLetterConfig").is_some(),
                has_retry_policy: props.pointer("/RetryPolicy").is_some(),
            });
        }
    }
    Ok(rules)
}

/// The event-pattern operators the local stack implements (EventBridge's, and the pipe's
/// filters, which share the syntax). [`check_pattern`] refuses any other, so a template using
/// one fails the tests instead of matching differently here than in AWS.
const OPERATORS: [&str; 5] = [
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "equals-ignore-case",
];

/// Whether the local stack can match `pattern` exactly as AWS does.
pub fn check_pattern(pattern: &Value) -> Result<()> {
    let Value::Object(fields) = pattern else {
        return Err(Error::Config(format!(
            "an event pattern must be an object, not {pattern}"
        )));
    };
    for (key, sub) in fields {
        match sub {
            Value::Object(_) => check_pattern(sub)?,
            Value::Array(values) => {
                for value in values {
                    if let Value::Object(operator) = value {
                        let name = operator.keys().next().map(String::as_str).unwrap_or("");
                        if operator.len() != 1 || !OPERATORS.contains(&name) {
                            return Err(Error::Config(format!(
                                "event pattern operator {value} (under `{key}`) is not one the \
                                 local stack implements ({})",
                                OPERATORS.join(", ")
                            )));
                        }
                    }
                }
            }
            other => {
                return Err(Error::Config(format!(
                    "`{key}` in an event pattern must be an array or an object, not {other}"
                )));
            }
        }
    }
    Ok(())
}

/// EventBridge's matching of `pattern` against `event` (also the pipes' and Lambda's filters):
/// every field of the pattern must match; an array of allowed values matches when one does,
/// against the field's value or any element of it.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, sub)| match (sub, event.get(key)) {
        (Value::Object(_), Some(value)) => matches(sub, value),
        (Value::Object(_), None) => false,
        (Value::Array(allowed), value) => allowed.iter().any(|a| allows(a, value)),
        _ => false,
    })
}

fn allows(allowed: &Value, value: Option<&Value>) -> bool {
    let Value::Object(operator) = allowed else {
        return match value {
            Some(Value::Array(items)) => items.contains(allowed),
            Some(value) => value == allowed,
            None => false,
        };
    };
    let Some((name, argument)) = operator.iter().next() else {
        return false;
    };
    let text = value.and_then(Value::as_str);
    match name.as_str() {
        "exists" => argument.as_bool() == Some(value.is_some()),
        "prefix" => text
            .zip(argument.as_str())
            .is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text
            .zip(argument.as_str())
            .is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text
            .zip(argument.as_str())
            .is_some_and(|(t, a)| t.eq_ignore_ascii_case(a)),
        "anything-but" => value.is_some_and(|v| match argument {
            Value::Array(excluded) => !excluded.contains(v),
            excluded => excluded != v,
        }),
        _ => false,
    }
}

/// The value at a `$.a.b.c` path of `value`.
pub fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(value, |v, key| v.get(key))
}

/// The pipes' input transformation: each `<$.path>` of `template` replaced by the record's
/// value there. Inside quotes a string value goes in JSON-escaped (so a quote in a call id
/// cannot break the event), and a missing value becomes empty; outside quotes the value goes in
/// as JSON (`null` when missing). The result must be JSON.
pub fn transform(template: &str, record: &Value) -> Result<Value> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("<$.").or_else(|| rest.find("<aws.pipes.")) {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let (before, token) = (&rest[..start], &rest[start + 1..start + len]);
        let after = &rest[start + len + 1..];
        out.push_str(before);
        let quoted = before.ends_with('"') && after.starts_with('"');
        if let Some(variable) = token.strip_prefix("aws.pipes.") {
            return Err(Error::Config(format!(
                "the pipe's input template uses <aws.pipes.{variable}>, which the local stack \
                 does not provide"
            )));
        }
        let value = at_path(record, token);
        match (quoted, value) {
            (true, Some(Value::String(s))) => {
                let escaped = serde_json::to_string(s).unwrap_or_default();
                out.push_str(&escaped[1..escaped.len() - 1]);
            }
            (true, Some(other)) => out.push_str(other.to_string().trim_matches('"')),
            (true, None) => {}
            (false, Some(value)) => out.push_str(&value.to_string()),
            (false, None) => out.push_str("null"),
        }
        rest = after;
    }
    out.push_str(rest);
    serde_json::from_str(&out)
        .map_err(|e| Error::Config(format!("the pipe's input template gives invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_like_eventbridge() {
        let pattern = json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["call_ended", "mid_call"]}}}});
        let record = |name: &str, kind: &str| json!({"eventName": name, "dynamodb": {"NewImage": {"type": {"S": kind}, "pk": {"S": "x"}}}});
        assert!(matches(&pattern, &record("INSERT", "call_ended")));
        assert!(matches(&pattern, &record("INSERT", "mid_call")));
        assert!(!matches(&pattern, &record("MODIFY", "call_ended")));
        assert!(!matches(&pattern, &record("INSERT", "failure")));
        assert!(!matches(&pattern, &json!({"eventName": "INSERT"})));

        let event = json!({"source": "callhook", "detail-type": "call.missed", "detail": {"provider": "vox", "tags": ["a", "b"]}});
        let rule = |p: Value| matches(&p, &event);
        assert!(rule(
            json!({"source": ["callhook"], "detail-type": ["call.missed"]})
        ));
        assert!(rule(json!({"detail": {"tags": ["b"]}})));
        assert!(rule(json!({"detail-type": [{"prefix": "call."}]})));
        assert!(rule(json!({"detail-type": [{"suffix": ".missed"}]})));
        assert!(rule(
            json!({"detail": {"provider": [{"anything-but": ["retell"]}]}})
        ));
        assert!(!rule(
            json!({"detail": {"provider": [{"anything-but": "vox"}]}})
        ));
        assert!(rule(json!({"detail": {"agent": [{"exists": false}]}})));
        assert!(!rule(json!({"detail": {"provider": [{"exists": false}]}})));
        assert!(rule(
            json!({"source": [{"equals-ignore-case": "CallHook"}]})
        ));
        assert!(!rule(json!({"source": ["callhook.events"]})));
    }

    #[test]
    fn operators_the_local_stack_lacks_are_refused() {
        assert!(
            check_pattern(
                &json!({"source": ["a", {"prefix": "b"}], "detail": {"x": [{"exists": true}]}})
            )
            .is_ok()
        );
        for unknown in [
            json!({"detail": {"n": [{"numeric": [">", 0]}]}}),
            json!({"source": [{"wildcard": "call.*"}]}),
            json!({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}),
            json!({"$or": [{"source": ["a"]}]}),
            json!({"source": "callhook"}),
        ] {
            assert!(check_pattern(&unknown).is_err(), "{unknown}");
        }
    }

    #[test]
    fn the_input_transformation_escapes_what_it_inserts() {
        let record = json!({"dynamodb": {"Keys": {"pk": {"S": "call#vox#a\"b<c>"}}, "NewImage": {"received_at": {"N": "17"}}}});
        let out = transform(
            r#"{"pk": "<$.dynamodb.Keys.pk.S>", "at": "<$.dynamodb.NewImage.received_at.N>", "raw": <$.dynamodb.Keys.pk>, "none": "<$.nothing>"}"#,
            &record,
        )
        .unwrap();
        assert_eq!(out["pk"], "call#vox#a\"b<c>");
        assert_eq!(out["at"], "17");
        assert_eq!(out["raw"], json!({"S": "call#vox#a\"b<c>"}));
        assert_eq!(out["none"], "");
        assert!(transform(r#"{"t": "<aws.pipes.pipe-arn>"}"#, &record).is_err());
    }

    #[test]
    fn the_template_declares_both_tables_one_pipe_and_five_rules() {
        let events = TableDef::from_template(EVENTS_TABLE).unwrap();
        assert_eq!(events.stream, Some(StreamViewType::NewImage));
        assert_eq!(events.keys.len(), 2);
        let calls = TableDef::from_template(CALLS_TABLE).unwrap();
        let names: Vec<_> = calls.indexes.iter().map(|i| i.index_name()).collect();
        assert_eq!(names, ["by_time", "by_agent", "by_from", "by_to"]);
        let pipe = pipe().unwrap();
        assert!(pipe.has_dead_letter_queue);
        let rules = rules().unwrap();
        assert_eq!(rules.len(), 5);
        assert!(rules.iter().all(|r| r.has_on_failure_destination
            && r.has_dead_letter_queue
            && r.has_retry_policy));
    }

    #[test]
    fn every_pattern_of_the_template_is_one_the_local_stack_implements() {
        let pipe = pipe().unwrap();
        for pattern in &pipe.patterns {
            check_pattern(pattern).unwrap();
        }
        for rule in rules().unwrap() {
            check_pattern(&rule.pattern).unwrap_or_else(|e| panic!("{}: {e}", rule.function));
        }
    }
}
