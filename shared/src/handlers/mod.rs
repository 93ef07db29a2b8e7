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

/// The AWS SDK configuration of a function running in Lambda, from what Lambda puts in its
/// environment: the region (`AWS_REGION`) and the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), with the timeouts and
/// retries of [`sdk_config_for`]. Not aws-config's default chain, which looks for profile files,
/// web identity tokens, SSO caches and the instance metadata service that a function never has,
/// and links the STS client for them: the bootstrap is smaller and its cold start shorter without.
/// Endpoints follow the SDKs' documented variables (`AWS_ENDPOINT_URL`, and
/// `AWS_ENDPOINT_URL_DYNAMODB`, `_EVENTBRIDGE`, `_SECRETS_MANAGER` for one service), as does
/// `AWS_USE_FIPS_ENDPOINT`; `CALLHOOK_DYNAMODB_ENDPOINT` (DynamoDB Local) as in [`sdk_config`].
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_timeout(STORAGE_DEADLINE)
        .build();
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .use_fips(var("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.eq_ignore_ascii_case("true")));
    if let Some(local) = var("CALLHOOK_DYNAMODB_ENDPOINT") {
        return builder
            .endpoint_url(local)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "local",
                "local",
                None,
                None,
                "callhook-local",
            )))
            .build();
    }
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        builder = builder.region(aws_config::Region::new(region));
    }
    if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    builder
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .build()
}

/// The DynamoDB client of a function: `AWS_ENDPOINT_URL_DYNAMODB` when set.
fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(endpoint) = service_endpoint("DYNAMODB") {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, the endpoint of one service when it is set.
pub(crate) fn service_endpoint(service: &str) -> Option<String> {
    std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Config, store and bus, built once per cold start.
pub async fn init() -> Result<(Config, Store, crate::bus::Bus)> {
    let config = Config::from_env()?;
    let sdk = lambda_sdk_config();
    let store = Store::new(dynamodb_client(&sdk), &config);
    Ok((config, store, crate::bus::Bus::from_env(&sdk)))
}

/// JSON logs in Lambda (one object per line, for CloudWatch Logs Insights and Lambda's own
/// level filter, which reads their `level`), at the level Lambda's logging controls set (see
/// [`log_filter`]). Nothing logged anywhere contains a secret, token or signature.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::fmt()
        .json()
        // Everything reaches the filter by target, which decides (the builder alone stops at info).
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .finish()
        .with(log_filter(level.as_deref()))
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
/// `TRACE` … `FATAL`; or `target=level` directives, as `RUST_LOG` takes them), `info` when none
/// or invalid or for the targets no directive names, with the libraries of [`RAW_TRAFFIC`] held
/// at `info`. A filter by target, not an
/// `EnvFilter`: the functions need no regular expressions, and their binary is smaller without.
pub fn log_filter(level: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
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
    let mut filter: Targets = level.parse().unwrap_or_default();
    // Directives for some targets only leave the rest at info, never silent.
    if filter.default_level().is_none() {
        filter = filter.with_default(LevelFilter::INFO);
    }
    for target in RAW_TRAFFIC {
        filter = filter.with_target(target, LevelFilter::INFO);
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
    let sdk = lambda_sdk_config();
    let live = std::sync::Arc::new(crate::secrets::LiveConfig::from_env(&sdk).await?);
    let (config, _) = live.current();
    let store = Store::new(dynamodb_client(&sdk), &config);
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
    fn the_log_filter_takes_lambdas_levels_and_holds_raw_traffic_at_info() {
        use tracing::Level;
        let debug = log_filter(Some("DEBUG"));
        assert!(debug.would_enable("callhook::handlers", &Level::DEBUG));
        assert!(!debug.would_enable("callhook::handlers", &Level::TRACE));
        for target in RAW_TRAFFIC {
            assert!(debug.would_enable(target, &Level::INFO), "{target}");
            assert!(!debug.would_enable(target, &Level::DEBUG), "{target}");
        }
        assert!(!log_filter(Some("trace")).would_enable("lambda_runtime::layers", &Level::DEBUG));
        let fatal = log_filter(Some("FATAL"));
        assert!(fatal.would_enable("callhook", &Level::ERROR));
        assert!(!fatal.would_enable("callhook", &Level::WARN));
        for default in [None, Some(""), Some("no such level="), Some("hyper=debug")] {
            let filter = log_filter(default);
            assert!(filter.would_enable("callhook", &Level::INFO), "{default:?}");
            assert!(
                !filter.would_enable("callhook", &Level::DEBUG),
                "{default:?}"
            );
        }
        let directives = log_filter(Some("info,callhook::store=trace"));
        assert!(directives.would_enable("callhook::store::events", &Level::TRACE));
        assert!(!directives.would_enable("callhook::intake", &Level::DEBUG));
    }

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
