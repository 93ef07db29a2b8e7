//! `callhook dev`: the local stack. Serves `POST /webhooks/{provider}` through the very same
//! ingest handler the Lambda runs, and runs the event path as AWS does: one reader of the events
//! table's stream (the pipe, its filter and input transformation), the bus rules, and the
//! per-type functions invoked concurrently with Lambda's asynchronous retries and failure queue.

use crate::state::{DevCredential, State};
use callhook::auth::Recipe;
use callhook::config::{Config, OptOutPolicy};
use callhook::handlers::sdk_config;
use callhook::provider::REGISTRY;
use callhook::store::Store;
use callhook_local::template::create_tables;
use callhook_local::{PipeRunner, streams_client};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to serve on (127.0.0.1).
    #[arg(long, env = "CALLHOOK_PORT", default_value_t = 3000)]
    port: u16,
    /// Where the local stack writes its state (endpoint, tables, URLs, dev credentials) for the
    /// other commands; removed on exit.
    #[arg(long, env = "CALLHOOK_STATE", default_value = crate::state::DEFAULT_PATH)]
    state_file: PathBuf,
    /// How often the stream is polled, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
}

use crate::Error;

/// `log`: the filter `-v`/`-q` asked for (info by default).
pub async fn run(args: Args, log: tracing_subscriber::EnvFilter) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(log)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let endpoint = std::env::var("CALLHOOK_DYNAMODB_ENDPOINT")
        .map_err(|_| "CALLHOOK_DYNAMODB_ENDPOINT is not set (make dev sets it after starting DynamoDB Local)")?;

    let (vars, generated) = dev_vars();
    let config = Arc::new(Config::from_vars(vars)?);
    let sdk = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    create_tables(&client, &config.events_table, &config.calls_table).await?;
    let store = Store::new(client, &config);
    let runner = PipeRunner::new(store.clone(), streams_client(&sdk)).await?;

    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let base = format!("http://{addr}");
    let urls = webhook_urls(&config, &base, &generated);
    write_state(
        &args.state_file,
        &endpoint,
        &config,
        &base,
        &urls,
        &generated,
    )?;
    if !crate::output::quiet() {
        print_banner(&endpoint, &config, &urls, &generated, &args.state_file);
    }

    let poller = tokio::spawn(poll_forever(
        runner,
        config.clone(),
        Duration::from_millis(args.poll_ms),
    ));
    let serve = callhook_local::server::serve(listener, config.clone(), store);
    tokio::select! {
        result = serve => result?,
        _ = tokio::signal::ctrl_c() => eprintln!("\ncallhook: stopping"),
    }
    poller.abort();
    let _ = std::fs::remove_file(&args.state_file);
    Ok(())
}

/// The environment, with generated dev credentials for every provider left unconfigured.
fn dev_vars() -> (Vec<(String, String)>, HashMap<&'static str, String>) {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    let mut generated = HashMap::new();
    let set = |key: &str| std::env::var(key).is_ok_and(|v| !v.trim().is_empty());
    for provider in REGISTRY {
        let prefix = format!("CALLHOOK_{}", provider.name().to_ascii_uppercase());
        if ["AUTH", "SECRETS", "TOKENS", "PUBLIC_KEYS"]
            .iter()
            .any(|part| set(&format!("{prefix}_{part}")))
        {
            continue;
        }
        let scheme = provider.auth_defaults().scheme;
        let value = if scheme == "telnyx" {
            // An Ed25519 key pair: the stack holds the public key, `send` the private one.
            use base64::Engine as _;
            let seed = hex::decode(&random_hex()[..64]).unwrap_or_default();
            base64::engine::general_purpose::STANDARD.encode(seed)
        } else {
            format!("dev-{}", &random_hex()[..24])
        };
        let (key, configured) = match scheme {
            "token" => ("TOKENS", value.clone()),
            "telnyx" => match Recipe::ed25519_public_key(&value) {
                Some(public) => ("PUBLIC_KEYS", public),
                None => continue,
            },
            _ => ("SECRETS", value.clone()),
        };
        vars.push((format!("{prefix}_{key}"), configured));
        generated.insert(provider.name(), value);
    }
    (vars, generated)
}

fn random_hex() -> String {
    // Dev credentials only: the process's random hasher seed plus the time is plenty.
    let seed = std::collections::hash_map::RandomState::new();
    let noise = std::hash::BuildHasher::hash_one(&seed, std::time::SystemTime::now());
    hex::encode(Sha256::digest(format!(
        "{noise}{:?}",
        std::time::Instant::now()
    )))
}

fn webhook_urls(
    config: &Config,
    base: &str,
    generated: &HashMap<&str, String>,
) -> Vec<(String, String)> {
    config
        .providers
        .iter()
        .map(|p| {
            let name = p.provider.name();
            let mut url = format!("{base}/webhooks/{name}");
            if let (Some(token), "token") = (generated.get(name), p.provider.auth_defaults().scheme)
            {
                url.push_str(&format!("?token={token}"));
            }
            (name.to_owned(), url)
        })
        .collect()
}

fn write_state(
    path: &Path,
    endpoint: &str,
    config: &Config,
    base: &str,
    urls: &[(String, String)],
    generated: &HashMap<&str, String>,
) -> Result<(), Error> {
    let dev_credentials = generated
        .iter()
        .map(|(provider, value)| {
            let scheme = REGISTRY
                .iter()
                .find(|p| p.name() == *provider)
                .map_or("token", |p| p.auth_defaults().scheme);
            (
                (*provider).to_owned(),
                DevCredential {
                    scheme: scheme.to_owned(),
                    value: value.clone(),
                },
            )
        })
        .collect();
    let state = State {
        dynamodb_endpoint: endpoint.to_owned(),
        events_table: config.events_table.clone(),
        calls_table: config.calls_table.clone(),
        base_url: base.to_owned(),
        opt_out_policy: match config.opt_out_policy {
            OptOutPolicy::Keep => "keep",
            OptOutPolicy::Redact => "redact",
        }
        .to_owned(),
        webhooks: urls.iter().cloned().collect(),
        dev_credentials,
        number_index_key: config
            .number_index_key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        pid: std::process::id(),
    };
    state
        .write(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

fn print_banner(
    endpoint: &str,
    config: &Config,
    urls: &[(String, String)],
    generated: &HashMap<&str, String>,
    state: &std::path::Path,
) {
    eprintln!("\ncallhook is running locally\n");
    for (provider, url) in urls {
        eprintln!("  {provider:<10} POST {url}");
        if let Some(secret) = generated.get(provider.as_str()) {
            let scheme = REGISTRY
                .iter()
                .find(|p| p.name() == provider)
                .map(|p| p.auth_defaults());
            if let Some(defaults) = scheme.filter(|d| d.scheme != "token") {
                eprintln!(
                    "  {:<10} {} secret (dev): {secret}  header {}",
                    "", defaults.scheme, defaults.header
                );
            }
        }
    }
    for disabled in &config.disabled_providers {
        eprintln!(
            "  {disabled:<10} off (set CALLHOOK_{}_TOKENS or _SECRETS)",
            disabled.to_ascii_uppercase()
        );
    }
    eprintln!(
        "\n  data:  DynamoDB Local at {endpoint}, tables {} and {}",
        config.events_table, config.calls_table
    );
    eprintln!(
        "  state: {} (the callhook CLI finds the stack through it)",
        state.display()
    );
    eprintln!("  stop:  Ctrl-C\n");
}

async fn poll_forever(mut runner: PipeRunner, config: Arc<Config>, every: Duration) {
    loop {
        if let Err(error) = runner.poll(&config).await {
            tracing::warn!(%error, "stream poll failed; retrying");
        }
        // Call events were logged as they were put; letters are on the queue (`failures list`).
        runner.published.clear();
        runner.stats.merge_latencies_ms.clear();
        runner.dead_letters.retain(|letter| !letter.enqueued);
        tokio::time::sleep(every).await;
    }
}
