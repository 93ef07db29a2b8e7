//! The local stack's parts that AWS provides in the cloud: table creation from the template and
//! the stream → pipe → bus → function plumbing. Used by `make dev`, the CLI and the end-to-end tests.

pub mod fixtures;
pub mod runner;
pub mod server;
pub mod template;

pub use runner::{DeadLetter, PipeRunner, Stats};

/// A DynamoDB Streams client with the same endpoint, region and credentials as the stack's
/// DynamoDB client.
pub fn streams_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(sdk)
}
