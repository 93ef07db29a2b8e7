//! What the local stack and the tests read from `template.yaml`, so they run exactly what AWS
//! runs: the tables' keys, indexes and stream, and each stream function's event source mapping
//! (filter, batch size, retries, bisection). One source of truth: the template.

use crate::error::{Error, Result};
use crate::event::EventType;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use serde_json::Value;

/// The template this build was made with.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

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
            Err(e) => Err(crate::store::storage(e)),
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

/// A stream function's event source mapping, as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMapping {
    pub logical_id: String,
    /// The cargo binary (`BuildProperties.Binary`), which is also the function crate's name.
    pub binary: String,
    /// The canonical type its filter selects.
    pub event_type: EventType,
    /// The filter patterns (any one matching lets a record through).
    pub patterns: Vec<Value>,
    pub batch_size: usize,
    pub maximum_retry_attempts: u32,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    pub has_failure_destination: bool,
}

/// Every `DynamoDB` event source of every function in the template.
pub fn stream_mappings() -> Result<Vec<StreamMapping>> {
    let template = template()?;
    let mut mappings = Vec::new();
    for (logical_id, resource) in template["Resources"].as_object().into_iter().flatten() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for event in resource
            .pointer("/Properties/Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
        {
            if event["Type"] != "DynamoDB" {
                continue;
            }
            let props = &event["Properties"];
            let patterns = props
                .pointer("/FilterCriteria/Filters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|f| {
                    let text = f["Pattern"].as_str().unwrap_or_default();
                    serde_json::from_str(text)
                        .map_err(|e| Error::Config(format!("{logical_id} filter: {e}")))
                })
                .collect::<Result<Vec<Value>>>()?;
            let event_type = patterns
                .iter()
                .filter_map(|p| {
                    p.pointer("/dynamodb/NewImage/type/S/0")
                        .and_then(Value::as_str)
                })
                .find_map(EventType::parse)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{logical_id}: its filter selects no canonical type"
                    ))
                })?;
            mappings.push(StreamMapping {
                logical_id: logical_id.clone(),
                binary: binary.to_owned(),
                event_type,
                patterns,
                batch_size: props["BatchSize"].as_u64().unwrap_or(100) as usize,
                maximum_retry_attempts: props["MaximumRetryAttempts"].as_u64().unwrap_or(0) as u32,
                bisect_on_error: props["BisectBatchOnFunctionError"]
                    .as_bool()
                    .unwrap_or(false),
                report_batch_item_failures: props["FunctionResponseTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                has_failure_destination: props
                    .pointer("/DestinationConfig/OnFailure/Destination")
                    .is_some(),
            });
        }
    }
    Ok(mappings)
}

/// Lambda's event filtering for the subset callhook's patterns use: nested objects, and arrays
/// of allowed values (a record field matches when it equals one of them).
pub fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match record.get(key) {
            Some(value) => matches(sub, value),
            None => false,
        }),
        Value::Array(allowed) => allowed.iter().any(|a| a == record),
        other => other == record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_like_lambda_event_filtering() {
        let pattern = json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["call_ended"]}}}});
        let record = |name: &str, kind: &str| json!({"eventName": name, "dynamodb": {"NewImage": {"type": {"S": kind}, "pk": {"S": "x"}}}});
        assert!(matches(&pattern, &record("INSERT", "call_ended")));
        assert!(!matches(&pattern, &record("MODIFY", "call_ended")));
        assert!(!matches(&pattern, &record("INSERT", "call_started")));
        assert!(!matches(&pattern, &record("INSERT", "part")));
        assert!(!matches(&pattern, &json!({"eventName": "INSERT"})));
    }

    #[test]
    fn the_template_declares_both_tables_and_five_mappings() {
        let events = TableDef::from_template(EVENTS_TABLE).unwrap();
        assert_eq!(events.stream, Some(StreamViewType::NewImage));
        assert_eq!(events.keys.len(), 2);
        let calls = TableDef::from_template(CALLS_TABLE).unwrap();
        let names: Vec<_> = calls.indexes.iter().map(|i| i.index_name()).collect();
        assert_eq!(names, ["by_time", "by_agent", "by_from", "by_to"]);
        let mappings = stream_mappings().unwrap();
        assert_eq!(mappings.len(), 5);
        assert!(mappings.iter().all(|m| m.bisect_on_error
            && m.report_batch_item_failures
            && m.has_failure_destination));
    }
}
