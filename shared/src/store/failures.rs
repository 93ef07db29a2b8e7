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
