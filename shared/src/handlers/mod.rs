//! The Lambda handlers, as library functions: each function crate's `main.rs` only wires them to
//! the runtime, and the local stack and the tests call the very same code.

pub mod ingest;
pub mod merge;

use crate::config::Config;
use crate::error::Result;
use crate::store::Store;
use std::time::Duration;

/// How long a request may spend on storage before it is answered 503: a sender waits 5–10 s for
/// its answer, and a 503 in time (so it retries) beats the sender's own timeout.
pub const STORAGE_DEADLINE: Duration = Duration::from_secs(4);

/// The AWS SDK configuration, built once per cold start. `CALLHOOK_DYNAMODB_ENDPOINT` points it at
/// DynamoDB Local.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("CALLHOOK_DYNAMODB_ENDPOINT").ok();
    sdk_config_for(endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty())).await
}

/// The AWS SDK configuration, against `endpoint` (DynamoDB Local) when given.
///
/// One call may take up to [`STORAGE_DEADLINE`], all of it in one attempt: a write that was sent
/// is carried out whether or not we wait for it, so cutting a slow attempt short and sending it
/// again doubles the work exactly when storage is slowest, just back from an outage with every
/// sender's retry arriving at once. (Cut at 2 s, those attempts timed out, were answered 503 and
/// sent again, and ingest kept failing for seconds after storage was back: docs/RELIABILITY.md,
/// suite 3.) Quick, certain failures (no connection within 1 s, a refused or reset one, a 5xx,
/// throttling) are retried within the standard retry quota; an outage drains it, so that during
/// one, requests are refused at once instead of after backoffs.
pub async fn sdk_config_for(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_timeout(STORAGE_DEADLINE)
        .build();
    sdk_loader(endpoint)
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// The SDK configuration loader: the standard AWS chain (credentials, region), or DynamoDB Local
/// at `endpoint`, which takes any credentials and region but needs some all the same.
pub fn sdk_loader(endpoint: Option<&str>) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match endpoint {
        Some(endpoint) => loader
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "callhook-local",
            )),
        None => loader,
    }
}

/// Config, store and bus, built once per cold start.
pub async fn init() -> Result<(Config, Store, crate::bus::Bus)> {
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &config);
    Ok((config, store, crate::bus::Bus::from_env(&sdk)))
}

/// JSON logs in Lambda (one object per line, for CloudWatch Logs Insights and Lambda's own
/// level filter, which reads their `level`), at the level Lambda's logging controls set (see
/// [`log_filter`]). Nothing logged anywhere contains a secret, token or signature.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(log_filter(level.as_deref()))
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// What would log a request's raw bytes at `debug` or `trace`: the runtime logs each raw
/// invocation event (a webhook's signature headers and `?token=` in it) at `trace`, and the HTTP
/// and SDK layers log requests and their signing. They stay at `info` whatever the level asked.
const RAW_TRAFFIC: [&str; 13] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The log filter for `level` (Lambda's `AWS_LAMBDA_LOG_LEVEL`, from the template's `LogLevel`:
/// `TRACE` … `FATAL`; or an `EnvFilter` directive list), `info` when none or invalid, with the
/// libraries of [`RAW_TRAFFIC`] held at `info`.
pub fn log_filter(level: Option<&str>) -> tracing_subscriber::EnvFilter {
    let level = level
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("info")
        .to_ascii_lowercase();
    // Lambda's FATAL is tracing's ERROR.
    let level = if level == "fatal" {
        "error".to_owned()
    } else {
        level
    };
    let mut filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in RAW_TRAFFIC {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Milliseconds since the Unix epoch, by the system clock (0 before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `Handler` of the function behind the webhook route.
pub const INGEST: &str = "ingest";

/// The canonical types a function of their own merges, each on its rule of the bus.
pub const MERGED: [crate::EventType; 5] = [
    crate::EventType::CallStarted,
    crate::EventType::MidCall,
    crate::EventType::CallEnded,
    crate::EventType::CallAnalyzed,
    crate::EventType::MessageReceived,
];

/// What the function named by `handler` runs: ingest, or the merge of one canonical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Ingest,
    Merge(crate::EventType),
}

impl Function {
    /// The function a `Handler` names (`ingest`, `call-started`, ...).
    pub fn from_handler(handler: &str) -> Option<Self> {
        if handler == INGEST {
            return Some(Self::Ingest);
        }
        MERGED
            .into_iter()
            .find(|t| merge::function_name(*t) == handler)
            .map(Self::Merge)
    }

    /// Every function's `Handler`, ingest first.
    pub fn handlers() -> Vec<String> {
        std::iter::once(INGEST.to_owned())
            .chain(MERGED.into_iter().map(merge::function_name))
            .collect()
    }
}

/// The runtime loop of the function the template's `Handler` names: every function of the stack
/// runs the same bootstrap (one build, one link), and Lambda tells it which it is in `_HANDLER`.
pub async fn run(handler: &str) -> Result<(), lambda_runtime::Error> {
    match Function::from_handler(handler) {
        Some(Function::Ingest) => run_ingest().await,
        Some(Function::Merge(event_type)) => run_merge(event_type).await,
        None => Err(format!(
            "the function's handler is {handler:?}; callhook's bootstrap serves {}",
            Function::handlers().join(", ")
        )
        .into()),
    }
}

/// The `ingest` function's runtime loop. Its providers' credentials come from the provider secret
/// when the template names one (read at init, then kept fresh: [`crate::secrets`]).
pub async fn run_ingest() -> Result<(), lambda_http::Error> {
    init_tracing();
    let sdk = sdk_config().await;
    let live = std::sync::Arc::new(crate::secrets::LiveConfig::from_env(&sdk).await?);
    let (config, _) = live.current();
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &config);
    log_start("ingest", &config);
    let (live, store) = (&live, &store);
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(ingest::handle_live(live, store, request).await)
    }))
    .await
}

/// The runtime loop of the function serving `event_type`, invoked by its rule on the bus. A
/// failure worth retrying is the invocation's error (Lambda counts it, retries, then queues it).
pub async fn run_merge(event_type: crate::EventType) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let (config, store, bus) = init().await?;
    log_start(event_type.as_str(), &config);
    let (config, store, bus) = (&config, &store, &bus);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<
            aws_lambda_events::event::eventbridge::EventBridgeEvent<crate::bus::EventRef>,
        >| async move {
            merge::handle(
                config.opt_out_policy,
                store,
                bus,
                event_type,
                &event.payload.detail,
            )
            .await
            .map(drop)
            .map_err(|e| lambda_runtime::Diagnostic {
                error_type: e.code().to_owned(),
                error_message: e.to_string(),
            })
        },
    ))
    .await
}

fn log_start(function: &str, config: &Config) {
    let enabled: Vec<&str> = config.providers.iter().map(|p| p.provider.name()).collect();
    tracing::info!(
        function,
        events_table = %config.events_table,
        calls_table = %config.calls_table,
        providers = ?enabled,
        disabled = ?config.disabled_providers,
        "callhook started"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_handler_names_one_function_and_nothing_else_names_any() {
        let handlers = Function::handlers();
        assert_eq!(
            handlers,
            [
                "ingest",
                "call-started",
                "mid-call",
                "call-ended",
                "call-analyzed",
                "message-received"
            ]
        );
        let functions: Vec<Function> = handlers
            .iter()
            .map(|h| Function::from_handler(h).unwrap())
            .collect();
        assert_eq!(functions[0], Function::Ingest);
        for (function, event_type) in functions[1..].iter().zip(MERGED) {
            assert_eq!(*function, Function::Merge(event_type));
        }
        for other in ["", "bootstrap", "unknown", "call_started", "Ingest"] {
            assert_eq!(Function::from_handler(other), None, "{other}");
        }
    }
}
