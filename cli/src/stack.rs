//! Which callhook stack a command talks to: the tables named by flags or environment (a deployed
//! stack, with credentials and region from the standard AWS chain), or else the local stack that
//! `callhook dev` recorded in its state file. The options are global: they go before or after
//! the subcommand.

use crate::state::State;
use crate::{Error, NotFound};
use callhook::handlers::sdk_loader;
use callhook::store::Store;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The events table (the deployed stack's output `EventsTableName`).
    #[arg(
        long,
        global = true,
        env = "CALLHOOK_EVENTS_TABLE",
        value_name = "NAME"
    )]
    pub events_table: Option<String>,
    /// The calls table (the deployed stack's output `CallsTableName`).
    #[arg(long, global = true, env = "CALLHOOK_CALLS_TABLE", value_name = "NAME")]
    pub calls_table: Option<String>,
    /// A DynamoDB endpoint other than AWS's (DynamoDB Local).
    #[arg(
        long,
        global = true,
        env = "CALLHOOK_DYNAMODB_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,
    /// Under the redact policy: the stack's number index key, to look calls up by number (the
    /// deployed stack's NumberIndexKey parameter).
    #[arg(
        long,
        global = true,
        env = "CALLHOOK_NUMBER_INDEX_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub number_index_key: Option<String>,
    /// The state file of the local stack, used when no tables are named.
    #[arg(long, global = true, env = "CALLHOOK_STATE", default_value = crate::state::DEFAULT_PATH, value_name = "FILE")]
    pub state: PathBuf,
}

/// A connected stack.
pub struct Stack {
    pub store: Store,
    /// The local stack's state, when that is what we talk to.
    pub local: Option<State>,
    /// A DynamoDB endpoint other than AWS's (the local stack's, or DynamoDB Local named by hand).
    pub endpoint: Option<String>,
    pub sdk: aws_config::SdkConfig,
}

impl Stack {
    /// The opt-out policy to rebuild records with: the one given, else the local stack's, else
    /// `keep`.
    pub fn opt_out_policy(&self, given: Option<&str>) -> callhook::config::OptOutPolicy {
        let local = self.local.as_ref().map(|s| s.opt_out_policy.as_str());
        match given.or(local) {
            Some("redact") => callhook::config::OptOutPolicy::Redact,
            _ => callhook::config::OptOutPolicy::Keep,
        }
    }
}

impl StackArgs {
    pub async fn connect(&self) -> Result<Stack, Error> {
        let explicit = self.events_table.is_some() || self.calls_table.is_some();
        let local = if explicit {
            None
        } else {
            Some(State::read(&self.state)?.ok_or_else(|| {
                NotFound(
                    "no callhook stack found: start the local one with `make dev` (and run this \
                     from the project folder), or name a deployed stack's tables with \
                     --events-table and --calls-table (or CALLHOOK_EVENTS_TABLE and \
                     CALLHOOK_CALLS_TABLE; they are the stack outputs EventsTableName and \
                     CallsTableName)"
                        .to_owned(),
                )
            })?)
        };
        let (events_table, calls_table, endpoint) = match &local {
            Some(state) => (
                state.events_table.clone(),
                state.calls_table.clone(),
                Some(state.dynamodb_endpoint.clone()),
            ),
            None => (
                self.events_table
                    .clone()
                    .ok_or("--calls-table needs --events-table too")?,
                self.calls_table
                    .clone()
                    .ok_or("--events-table needs --calls-table too")?,
                self.endpoint.clone().filter(|e| !e.trim().is_empty()),
            ),
        };
        if let (Some(_), Some(endpoint)) = (&local, &endpoint) {
            if !answers(endpoint).await {
                return Err(format!(
                    "the local stack recorded in {} is not running (nothing answers at {endpoint}): \
                     start it with `make dev`",
                    self.state.display()
                )
                .into());
            }
        }
        let sdk = sdk_config(endpoint.as_deref()).await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let number_key = self
            .number_index_key
            .clone()
            .or_else(|| local.as_ref().and_then(|s| s.number_index_key.clone()))
            .filter(|k| !k.trim().is_empty());
        Ok(Stack {
            store: Store::with_tables(client, &events_table, &calls_table)
                .with_number_key(number_key.as_deref().map(|k| k.trim().as_bytes())),
            local,
            endpoint,
            sdk,
        })
    }
}

/// The SDK configuration for a command-line session: longer timeouts than the functions', since
/// nobody's webhook waits on them.
pub async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build();
    sdk_loader(endpoint).timeout_config(timeouts).load().await
}

/// Whether something accepts TCP connections at the URL's host and port.
async fn answers(url: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let (Some(host), port) = (uri.host(), uri.port_u16().unwrap_or(80)) else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}
