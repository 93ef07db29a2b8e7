//! Failures that can never succeed by retrying (the stored body no longer parses, DynamoDB
//! refuses the record): a function records each one here, in the events table's `failures`
//! partition, and moves on. `callhook failures list` shows them newest first beside the failure
//! queue's; `callhook failures replay` merges them again and removes what succeeded.
//!
//! On the local stack the failure queue (SQS in AWS) is emulated in the partition
//! `failures#queue`: its items hold the very messages AWS would have put on the queue.

use super::Store;
use super::dynamo::{Condition, Table, from_item, to_attributes};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The partition of recorded failures (the functions may write there and nowhere else in the
/// events table: the template's `dynamodb:LeadingKeys` condition).
pub const FAILURES_PK: &str = "failures";
/// The partition of the local stack's failure queue.
pub const LOCAL_QUEUE_PK: &str = "failures#queue";
/// The `type` of a failure record (no stream consumer selects it).
pub const TYPE_FAILURE: &str = "failure";
pub const TYPE_QUEUED: &str = "queued_failure";

/// One failure that retrying cannot fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub pk: String,
    /// `f#<unix ms, 13 digits>#<digest>`: newest first is a reverse Query.
    pub sk: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The function that gave up (`call-ended`, …).
    pub function: String,
    /// The record the event belongs to (`call#<provider>#<id>`).
    pub record_key: String,
    /// The event item's key.
    pub event_pk: String,
    pub event_sk: String,
    /// The canonical type of the event.
    pub event_type: String,
    /// The error's code (`unusable_payload`, `storage_rejected`, …) and its sentence.
    pub code: String,
    pub reason: String,
    /// When it was recorded (unix ms).
    pub at: i64,
}

impl Failure {
    pub fn new(
        function: &str,
        event_pk: &str,
        event_sk: &str,
        event_type: &str,
        error: &crate::Error,
        at: i64,
    ) -> Self {
        let digest = Sha256::digest(format!("{function}\n{event_pk}\n{event_sk}"));
        Self {
            pk: FAILURES_PK.to_owned(),
            sk: format!("f#{at:013}#{}", hex::encode(&digest[..8])),
            kind: TYPE_FAILURE.to_owned(),
            function: function.to_owned(),
            record_key: event_pk.to_owned(),
            event_pk: event_pk.to_owned(),
            event_sk: event_sk.to_owned(),
            event_type: event_type.to_owned(),
            code: error.code().to_owned(),
            reason: error.to_string(),
            at,
        }
    }

    /// The id `callhook failures` shows and takes.
    pub fn id(&self) -> &str {
        &self.sk
    }
}

/// A message of the local stack's failure queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedItem {
    pub pk: String,
    /// `q#<unix ms, 13 digits>#<digest>`.
    pub sk: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The message body, as AWS would have put it on the queue.
    pub message: String,
    pub at: i64,
}

impl Store {
    /// Records a failure (a redelivery of the same failing event records it again, under its
    /// new time; `failures list` shows the newest of each event).
    pub async fn record_failure(&self, failure: &Failure) -> Result<()> {
        self.events()
            .put(to_attributes(failure)?, Condition::Always)
            .await
            .map(drop)
    }

    /// Every recorded failure, newest first.
    pub async fn failures(&self) -> Result<Vec<Failure>> {
        let mut failures: Vec<Failure> = self
            .events()
            .query(FAILURES_PK, "f#")
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        failures.reverse();
        Ok(failures)
    }

    pub async fn delete_failure(&self, sk: &str) -> Result<()> {
        self.events().delete(FAILURES_PK, sk).await
    }

    /// Puts a message on the local stack's failure queue.
    pub async fn enqueue_local_failure(&self, message: &str, at: i64) -> Result<()> {
        let digest = Sha256::digest(message.as_bytes());
        let item = QueuedItem {
            pk: LOCAL_QUEUE_PK.to_owned(),
            sk: format!("q#{at:013}#{}", hex::encode(&digest[..8])),
            kind: TYPE_QUEUED.to_owned(),
            message: message.to_owned(),
            at,
        };
        self.events()
            .put(to_attributes(&item)?, Condition::Always)
            .await
            .map(drop)
    }

    /// The local stack's failure queue, oldest first.
    pub async fn local_failure_queue(&self) -> Result<Vec<QueuedItem>> {
        self.events()
            .query(LOCAL_QUEUE_PK, "q#")
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn delete_local_failure(&self, sk: &str) -> Result<()> {
        self.events().delete(LOCAL_QUEUE_PK, sk).await
    }
}

/// What a message of the failure queue says, whichever part of the stack put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The function (or rule, or pipe) that gave up.
    pub function: String,
    /// The stored event it concerns, when the message names one.
    pub event: Option<crate::bus::EventRef>,
    /// For a batch of stream records the pipe could not put on the bus: the unix ms window in
    /// which they arrived (the message names no event).
    pub window: Option<(i64, i64)>,
    pub reason: String,
    /// When it failed, when the message says (unix ms).
    pub at: Option<i64>,
}

/// Reads a failure queue message: a Lambda on-failure record (an invocation whose retries ran
/// out, its bus event in `requestPayload`), a bus event a rule could not deliver (its reason in
/// the `ERROR_MESSAGE` attribute), or a pipe's record of a stream batch it could not put on the
/// bus (its shard, sequence numbers and arrival times).
pub fn parse_queued(message: &str, error_attribute: Option<&str>) -> Queued {
    use serde_json::Value;
    let value: Value = serde_json::from_str(message).unwrap_or(Value::Null);
    let time = |v: &Value| v.as_str().and_then(crate::timefmt::iso8601_to_ms);
    let from_bus_event = |event: &Value| {
        serde_json::from_value::<crate::bus::EventRef>(event["detail"].clone()).ok()
    };
    let function_of = |event: Option<&crate::bus::EventRef>, fallback: &str| {
        event
            .and_then(crate::bus::EventRef::event_type)
            .map_or_else(
                || fallback.to_owned(),
                crate::handlers::merge::function_name,
            )
    };
    if let Some(payload) = value.get("requestPayload") {
        let event = from_bus_event(payload);
        let arn = value["requestContext"]["functionArn"]
            .as_str()
            .unwrap_or("");
        let name = arn.split(":function:").nth(1).unwrap_or(arn);
        let name = name.split(':').next().unwrap_or(name);
        let response = &value["responsePayload"];
        return Queued {
            function: function_of(event.as_ref(), name),
            reason: response["errorMessage"]
                .as_str()
                .or_else(|| value["requestContext"]["condition"].as_str())
                .unwrap_or("the invocation failed")
                .to_owned(),
            at: time(&value["timestamp"]),
            event,
            window: None,
        };
    }
    if value.get("detail-type").is_some() {
        let event = from_bus_event(&value);
        return Queued {
            function: function_of(event.as_ref(), "(rule)"),
            reason: error_attribute
                .unwrap_or("the rule could not invoke its function")
                .to_owned(),
            at: time(&value["time"]),
            event,
            window: None,
        };
    }
    // The pipe's record of a failed batch: find its stream batch information wherever it is.
    fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
        match value {
            Value::Object(map) => map
                .get(key)
                .or_else(|| map.values().find_map(|v| find(v, key))),
            Value::Array(items) => items.iter().find_map(|v| find(v, key)),
            _ => None,
        }
    }
    let first = find(&value, "approximateArrivalOfFirstRecord").and_then(time);
    let last = find(&value, "approximateArrivalOfLastRecord").and_then(time);
    Queued {
        function: "pipe".to_owned(),
        event: None,
        window: first.zip(last.or(first)),
        reason: find(&value, "condition")
            .or_else(|| find(&value, "errorMessage"))
            .and_then(Value::as_str)
            .or(error_attribute)
            .unwrap_or("the pipe could not put a batch of stream records on the bus")
            .to_owned(),
        at: time(&value["timestamp"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bus_event() -> serde_json::Value {
        json!({
            "version": "0", "id": "e1", "detail-type": "call_ended", "source": "callhook.events",
            "time": "2026-12-03T10:00:00Z",
            "detail": {"id": "d1", "pk": "call#vox#c1", "sk": "ev#d1", "type": "call_ended",
                       "provider": "vox", "call_id": "c1", "received_at": "1"},
        })
    }

    #[test]
    fn a_lambda_on_failure_record_names_its_event_and_error() {
        let message = json!({
            "version": "1.0", "timestamp": "2026-12-03T10:03:00.000Z",
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:eu-west-1:1:function:stack-CallEndedFunction-X:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": bus_event(),
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "storage_unavailable", "errorMessage": "Storage failed (throttled): slow down"},
        });
        let queued = parse_queued(&message.to_string(), None);
        assert_eq!(queued.function, "call-ended");
        assert_eq!(queued.event.unwrap().pk, "call#vox#c1");
        assert_eq!(queued.reason, "Storage failed (throttled): slow down");
        assert_eq!(queued.at, Some(1_796_292_180_000));
    }

    #[test]
    fn an_undelivered_bus_event_takes_its_reason_from_the_attribute() {
        let queued = parse_queued(&bus_event().to_string(), Some("Lambda throttled"));
        assert_eq!(queued.function, "call-ended");
        assert_eq!(queued.event.unwrap().sk, "ev#d1");
        assert_eq!(queued.reason, "Lambda throttled");
    }

    #[test]
    fn a_pipe_batch_gives_its_arrival_window() {
        let message = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "timestamp": "2026-12-03T10:05:00Z",
            "DDBStreamBatchInfo": {
                "shardId": "shardId-1", "startSequenceNumber": "100", "endSequenceNumber": "110",
                "approximateArrivalOfFirstRecord": "2026-12-03T10:00:00Z",
                "approximateArrivalOfLastRecord": "2026-12-03T10:00:01Z", "batchSize": 10,
            },
        });
        let queued = parse_queued(&message.to_string(), None);
        assert_eq!(queued.function, "pipe");
        assert!(queued.event.is_none());
        assert_eq!(queued.window, Some((1_796_292_000_000, 1_796_292_001_000)));
        assert_eq!(queued.reason, "RetryAttemptsExhausted");
    }
}
