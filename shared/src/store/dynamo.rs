//! The seam between callhook's storage logic and DynamoDB: the narrow [`Table`] interface (the
//! few operations the calls path needs), its SDK implementation, item encoding, and the mapping
//! of SDK errors to [`StorageKind`]s — retry decisions are derived from the kind, never from a
//! message.

use crate::error::{Error, Result, StorageKind, with_sources};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;

/// One item as DynamoDB attribute values.
pub type Item = HashMap<String, AttributeValue>;

/// The condition a put is made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only if no item has the key.
    Absent,
    /// Only if the item's `version` is this one.
    Version(u64),
}

/// What a conditional put did.
#[derive(Debug, Clone, PartialEq)]
pub enum Put {
    Written,
    /// The condition failed; the item as it is now (DynamoDB returns it with the failure).
    Refused(Option<Item>),
}

/// The operations of one table keyed by `pk` + `sk` that the calls path needs.
pub trait Table {
    fn get(&self, pk: &str, sk: &str) -> impl Future<Output = Result<Option<Item>>> + Send;
    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<Put>> + Send;
    /// Every item of a partition whose sort key starts with `prefix`, in sort-key order.
    fn query(&self, pk: &str, prefix: &str) -> impl Future<Output = Result<Vec<Item>>> + Send;
    fn delete(&self, pk: &str, sk: &str) -> impl Future<Output = Result<()>> + Send;
}

/// [`Table`] on a DynamoDB table.
#[derive(Debug, Clone, Copy)]
pub struct DynamoTable<'a> {
    client: &'a Client,
    name: &'a str,
}

impl<'a> DynamoTable<'a> {
    pub fn new(client: &'a Client, name: &'a str) -> Self {
        Self { client, name }
    }

    /// Every item of a partition whose sort key starts with `prefix`, in sort-key order, read
    /// with consistent Queries that `shape` adds to (a projection, a filter), page after page.
    pub async fn query_shaped(
        &self,
        pk: &str,
        prefix: &str,
        shape: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<Vec<Item>> {
        // A plain loop rather than the SDK's paginator: the paginator's stream types make the
        // merge functions' futures too deep for the compiler's default query limit.
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(self.name)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
            // DynamoDB refuses an empty string even as a prefix: no prefix, no sort-key condition.
            request = if prefix.is_empty() {
                request.key_condition_expression("pk = :pk")
            } else {
                request
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            };
            let out = shape(request)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(storage)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

impl Table for DynamoTable<'_> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(self.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(storage)?;
        Ok(out.item)
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Put> {
        let mut request = self
            .client
            .put_item()
            .table_name(self.name)
            .set_item(Some(item));
        request = match condition {
            Condition::Always => request,
            Condition::Absent => request.condition_expression("attribute_not_exists(pk)"),
            // A header written without a version (by hand, or by an older callhook) reads as
            // version 0, and must be replaceable as such.
            Condition::Version(0) => request
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :v)",
                )
                .expression_attribute_values(":v", AttributeValue::N("0".into())),
            Condition::Version(v) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        if condition != Condition::Always {
            request = request.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        match request.send().await {
            Ok(_) => Ok(Put::Written),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Put::Refused(failed.item().cloned()))
                }
                other => Err(storage(SdkError::<_, ()>::service_error(other, ()))),
            },
            Err(e) => Err(storage(e)),
        }
    }

    async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_shaped(pk, prefix, |query| query).await
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(self.name)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(storage)?;
        Ok(())
    }
}

/// An item as DynamoDB attribute values.
pub fn to_attributes<T: Serialize>(item: &T) -> Result<Item> {
    serde_dynamo::to_item(item).map_err(|e| Error::Internal(format!("item encoding: {e}")))
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item)
        .map_err(|e| Error::Internal(format!("stored item does not decode: {e}")))
}

/// The service's error codes that mean "slow down" rather than "cannot be done".
const THROTTLING: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionInProgressException",
    "Throttling",
];

/// Codes of failures that are not the request's fault: the same request may succeed later.
const TRANSIENT: [&str; 4] = [
    "InternalServerError",
    "ServiceUnavailable",
    "ItemCollectionSizeLimitExceededException",
    "TransactionConflictException",
];

/// A storage failure, with its kind and the service's error code for the log (never shown to
/// senders).
pub fn storage<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
>(
    error: SdkError<E, R>,
) -> Error {
    let (kind, detail) = match &error {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("service error");
            let kind = if THROTTLING.contains(&code) {
                StorageKind::Throttled
            } else if TRANSIENT.contains(&code) || code == "service error" {
                StorageKind::Transient
            } else {
                // ValidationException (an item too large, a key too long), access denied, a
                // missing table, a conditional failure nobody asked about: the same request
                // fails the same way.
                StorageKind::Rejected
            };
            let message = e.err().message().unwrap_or_default();
            (kind, format!("{code}: {message}"))
        }
        // The SDK's own words are terse ("dispatch failure"); the cause is in its sources
        // (connection refused, a DNS failure, the credentials chain): keep them all.
        SdkError::TimeoutError(_) => (StorageKind::Transient, with_sources(&error, 1000)),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (StorageKind::Transient, with_sources(&error, 1000))
        }
        _ => (StorageKind::Rejected, with_sources(&error, 1000)),
    };
    Error::storage(kind, detail)
}

impl<T: Table + Sync> Table for &T {
    fn get(&self, pk: &str, sk: &str) -> impl Future<Output = Result<Option<Item>>> + Send {
        (**self).get(pk, sk)
    }
    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<Put>> + Send {
        (**self).put(item, condition)
    }
    fn query(&self, pk: &str, prefix: &str) -> impl Future<Output = Result<Vec<Item>>> + Send {
        (**self).query(pk, prefix)
    }
    fn delete(&self, pk: &str, sk: &str) -> impl Future<Output = Result<()>> + Send {
        (**self).delete(pk, sk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;

    fn service_error(code: &str) -> Error {
        let error = PutItemError::generic(ErrorMetadata::builder().code(code).message("m").build());
        storage(SdkError::<_, ()>::service_error(error, ()))
    }

    #[test]
    fn storage_failures_keep_the_kind_retries_are_decided_from() {
        // Throttling never happens on DynamoDB Local: this is where it is classified.
        for (code, kind) in [
            (
                "ProvisionedThroughputExceededException",
                StorageKind::Throttled,
            ),
            ("ThrottlingException", StorageKind::Throttled),
            ("RequestLimitExceeded", StorageKind::Throttled),
            ("InternalServerError", StorageKind::Transient),
            ("ValidationException", StorageKind::Rejected),
            ("ResourceNotFoundException", StorageKind::Rejected),
            ("AccessDeniedException", StorageKind::Rejected),
        ] {
            let error = service_error(code);
            assert_eq!(error.storage_kind(), Some(kind), "{code}");
            assert_eq!(
                error.is_retryable(),
                kind != StorageKind::Rejected,
                "{code}"
            );
        }
        let timeout = storage(SdkError::<PutItemError, ()>::timeout_error("slow"));
        assert_eq!(timeout.storage_kind(), Some(StorageKind::Transient));
    }

    #[test]
    fn a_failure_to_reach_dynamodb_keeps_its_cause() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        );
        let error = storage(SdkError::<PutItemError, ()>::dispatch_failure(
            ConnectorError::io(Box::new(refused)),
        ));
        assert_eq!(error.storage_kind(), Some(StorageKind::Transient));
        assert_eq!(
            error.to_string(),
            "Storage failed (transient): dispatch failure: io error: \
             tcp connect error: Connection refused (os error 111)"
        );
    }
}
