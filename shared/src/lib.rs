//! callhook: receive the webhooks of AI phone-agent platforms, verify them on the raw bytes,
//! normalize every provider's payloads into one call record per call, and keep it all in
//! DynamoDB.
//!
//! This crate is shared by every function, the local runner and the CLI. Its pure core
//! (providers, authentication, canonical events, DynamoDB-safe values, merge, privacy) does no
//! I/O; the `aws` feature adds the DynamoDB adapter and the Lambda handlers.
#![forbid(unsafe_code)]

pub mod auth;
#[cfg(feature = "aws")]
pub mod bus;
pub mod config;
pub mod error;
pub mod event;
#[cfg(feature = "aws")]
pub mod handlers;
pub mod intake;
pub mod privacy;
pub mod provider;
#[cfg(feature = "aws")]
pub mod rebuild;
pub mod record;
#[cfg(feature = "aws")]
pub mod secrets;
pub mod storable;
#[cfg(feature = "aws")]
pub mod store;
pub mod timefmt;

pub use config::Config;
pub use error::{Error, Result};
pub use event::{CanonicalEvent, EventType};
pub use record::CallRecord;
