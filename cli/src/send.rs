//! `callhook send`: posts a payload to a callhook stack the way its provider would, signed with
//! the provider's scheme. `--all` posts every seed fixture: the demo in one line.

use crate::Error;
use crate::filter::provider_names;
use crate::output::print_json;
use crate::state::State;
use callhook::auth::{Scheme, Signature, sign_as};
use callhook::config::provider_scheme;
use callhook::provider::{REGISTRY, lookup};
use callhook_local::fixtures::{self, Fixture};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = after_help())]
pub struct Args {
    /// The provider whose webhook this is.
    #[arg(value_parser = provider_names(), required_unless_present = "all")]
    provider: Option<String>,
    /// A JSON file, or the name of a seed fixture (see below).
    #[arg(required_unless_present = "all", value_name = "FIXTURE_OR_FILE")]
    payload: Option<String>,
    /// Send every seed fixture, each call's events in order.
    #[arg(long, conflicts_with_all = ["provider", "payload", "secret", "token", "secret_file", "token_file"])]
    all: bool,
    /// The webhook URL, or the stack's base URL (`/webhooks/<provider>` is added). Default: the
    /// local stack's.
    #[arg(long, env = "CALLHOOK_URL")]
    url: Option<String>,
    /// The signing secret, for providers that sign (default: CALLHOOK_<PROVIDER>_SECRETS, else the
    /// local stack's dev secret).
    /// Prefer --secret-file: a secret on the command line stays in the shell's history and shows in
    /// `ps`.
    #[arg(long, conflicts_with_all = ["token", "secret_file", "token_file"])]
    secret: Option<String>,
    /// Read the signing secret from this file (`-`: standard input); a final line break is left
    /// out.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["token", "token_file"])]
    secret_file: Option<PathBuf>,
    /// The URL token, for providers authenticated by token (default: CALLHOOK_<PROVIDER>_TOKENS,
    /// else the local stack's dev token).
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the URL token from this file (`-`: standard input); a final line break is left out.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Print each delivery's answer as JSON.
    #[arg(long)]
    json: bool,
    /// The local stack's state file (its URL and dev credentials): the global --state.
    #[arg(skip)]
    state: PathBuf,
}

fn after_help() -> String {
    let mut help = String::from("Seed fixtures:\n");
    for provider in REGISTRY {
        let names: Vec<&str> = fixtures::ALL
            .iter()
            .filter(|f| f.provider == provider.name())
            .map(|f| f.name)
            .collect();
        help.push_str(&format!("  {:<10} {}\n", provider.name(), names.join(", ")));
    }
    help
}

/// One delivery to make.
struct Delivery {
    provider: String,
    /// The fixture name or the file.
    source: String,
    body: Vec<u8>,
    /// A form body (Twilio's) or JSON.
    content_type: &'static str,
}

/// The media type of a body a file holds: a form if it is not JSON.
fn content_type_of(body: &[u8]) -> &'static str {
    match body.trim_ascii_start().first() {
        Some(b'{' | b'[') | None => "application/json",
        Some(_) => "application/x-www-form-urlencoded",
    }
}

pub async fn run(mut args: Args, state_file: &Path) -> Result<(), Error> {
    args.state = state_file.to_owned();
    if let Some(path) = args.secret_file.take() {
        args.secret = Some(read_key(&path, "secret")?);
    }
    if let Some(path) = args.token_file.take() {
        args.token = Some(read_key(&path, "token")?);
    }
    let state = State::read(&args.state)?;
    let deliveries = deliveries(&args)?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build(),
    );
    let mut answers = Vec::new();
    let mut rejected = 0;
    for delivery in &deliveries {
        let url = webhook_url(args.url.as_deref(), state.as_ref(), &delivery.provider)?;
        let signed = sign(
            &args,
            state.as_ref(),
            &delivery.provider,
            &delivery.body,
            &url,
        )?;
        let mut target = url.clone();
        let mut request = hyper::Request::post(&url).header("content-type", delivery.content_type);
        match signed {
            Signature::Headers(headers) => {
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
            Signature::QueryToken(token) => {
                target = format!(
                    "{url}{}token={}",
                    if url.contains('?') { '&' } else { '?' },
                    encode(&token)
                );
            }
            Signature::Nothing => {}
        }
        let request = request
            .uri(&target)
            .body(Full::new(Bytes::from(delivery.body.clone())))?;
        let (status, body) =
            match tokio::time::timeout(Duration::from_secs(15), client.request(request)).await {
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let bytes = response.into_body().collect().await?.to_bytes();
                    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    });
                    (status, body)
                }
                Ok(Err(e)) => return Err(unreachable(&url, e.into())),
                Err(_) => return Err(unreachable(&url, "no answer within 15 s".into())),
            };
        if !(200..300).contains(&status) {
            rejected += 1;
        }
        if !args.json {
            println!("{}", line(delivery, status, &body));
        }
        answers.push(json!({
            "provider": delivery.provider,
            "source": delivery.source,
            "url": url,
            "status": status,
            "response": body,
        }));
    }
    if args.json {
        print_json(&Value::Array(answers));
    } else if deliveries.len() > 1 && !crate::output::quiet() {
        eprintln!(
            "\n{} sent, {} accepted, {rejected} refused. See them with: callhook calls list",
            deliveries.len(),
            deliveries.len() - rejected
        );
    }
    if rejected > 0 {
        return Err(format!("{rejected} of {} deliveries were refused", deliveries.len()).into());
    }
    Ok(())
}

fn deliveries(args: &Args) -> Result<Vec<Delivery>, Error> {
    let from_fixture = |f: &Fixture| Delivery {
        provider: f.provider.to_owned(),
        source: format!("{}/{}", f.provider, f.name),
        body: f.body.to_vec(),
        content_type: f.content_type(),
    };
    if args.all {
        return Ok(fixtures::ALL.iter().map(from_fixture).collect());
    }
    let (Some(provider), Some(payload)) = (&args.provider, &args.payload) else {
        return Err("name a provider and a payload, or use --all".into());
    };
    let path = Path::new(payload);
    if path.is_file() {
        let body = std::fs::read(path).map_err(|e| format!("cannot read {payload}: {e}"))?;
        return Ok(vec![Delivery {
            provider: provider.clone(),
            source: payload.clone(),
            content_type: content_type_of(&body),
            body,
        }]);
    }
    match fixtures::find(provider, payload) {
        Some(fixture) => Ok(vec![from_fixture(fixture)]),
        None => Err(format!(
            "`{payload}` is neither a file nor a seed fixture of {provider}; its fixtures: {}",
            fixtures::ALL
                .iter()
                .filter(|f| f.provider == provider)
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into()),
    }
}

/// A secret or token from a file, or from standard input for `-`, without its final line break.
fn read_key(path: &Path, what: &str) -> Result<String, Error> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read the {what} from standard input: {e}"))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the {what} from {}: {e}", path.display()))?
    };
    let key = text.strip_suffix('\n').unwrap_or(&text);
    let key = key.strip_suffix('\r').unwrap_or(key);
    if key.trim().is_empty() {
        let from = if path == Path::new("-") {
            "standard input".to_owned()
        } else {
            path.display().to_string()
        };
        return Err(format!("no {what} in {from}").into());
    }
    Ok(key.to_owned())
}

/// The provider's webhook URL, without any token.
fn webhook_url(url: Option<&str>, state: Option<&State>, provider: &str) -> Result<String, Error> {
    let base = match (url, state) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(state)) => state.base_url.trim_end_matches('/').to_owned(),
        (None, None) => {
            return Err(
                "no callhook stack to send to: start the local one with `make dev` (from \
                        the project folder), or pass --url with a deployed stack's webhook URL"
                    .into(),
            );
        }
    };
    let (path, query) = base.split_once('?').unwrap_or((&base, ""));
    let path = if path.contains("/webhooks/") {
        path.to_owned()
    } else {
        format!("{path}/webhooks/{provider}")
    };
    Ok(if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    })
}

/// The provider's signature for a request to `url`: its scheme from the environment
/// (`CALLHOOK_<PROVIDER>_AUTH` and the parts it overrides, as the stack reads them) or the local
/// stack's, and its key from the flags, else the environment (`_SECRETS`, `_TOKENS`, or for
/// Ed25519 schemes the sender's private key `_SIGNING_KEY`), else the local stack's dev
/// credentials.
fn sign(
    args: &Args,
    state: Option<&State>,
    provider: &str,
    body: &[u8],
    url: &str,
) -> Result<Signature, Error> {
    let prefix = format!("CALLHOOK_{}", provider.to_ascii_uppercase());
    let vars: HashMap<String, String> = std::env::vars()
        .filter(|(k, v)| k.starts_with(&prefix) && !v.trim().is_empty())
        .collect();
    let dev = state.and_then(|s| s.dev_credentials.get(provider));
    let setting = |part: &str| {
        let value = vars.get(&format!("{prefix}_{part}")).map(String::as_str);
        match (part, value) {
            ("AUTH", None) => dev.map(|d| d.scheme.as_str()),
            _ => value,
        }
    };
    let known = lookup(provider).ok_or_else(|| format!("no provider called {provider}"))?;
    let scheme = provider_scheme(known, setting)?;
    let (flag, variable) = match &scheme {
        Scheme::Token => (args.token.as_deref(), "TOKENS"),
        scheme if scheme.uses_public_keys() => (args.secret.as_deref(), "SIGNING_KEY"),
        _ => (args.secret.as_deref(), "SECRETS"),
    };
    let key = flag
        .or_else(|| setting(variable))
        .or_else(|| dev.map(|d| d.value.as_str()))
        .and_then(|list| list.split(',').map(str::trim).find(|k| !k.is_empty()))
        .ok_or_else(|| {
            format!(
                "no credentials for {provider}: pass --secret-file or --token-file, set \
                 {prefix}_{variable}, or run `make dev`, whose dev credentials are in {}",
                args.state.display()
            )
        })?;
    // A delivery id derived from the body: sending the same payload again is a redelivery.
    let id = format!("msg_{}", hex::encode(&Sha256::digest(body)[..12]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    Ok(sign_as(&scheme, key, body, url, &id, now)?)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A delivery that reached nothing: the URL, and why as its cause (the connection's error and its
/// own causes, or the timeout).
#[derive(Debug)]
struct Unreachable {
    url: String,
    why: Error,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach {} (is the stack running? `make dev` starts the local one)",
            self.url
        )
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.why)
    }
}

fn unreachable(url: &str, why: Error) -> Error {
    Box::new(Unreachable {
        url: url.to_owned(),
        why,
    })
}

fn line(delivery: &Delivery, status: u16, body: &Value) -> String {
    let what = if (200..300).contains(&status) {
        if body["duplicate"] == true {
            "duplicate".to_owned()
        } else {
            "stored".to_owned()
        }
    } else {
        format!(
            "{}: {}",
            body["error"].as_str().unwrap_or("refused"),
            body["message"].as_str().unwrap_or_default()
        )
    };
    format!("{:<32} {status} {what}", delivery.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_a_base_or_a_full_webhook_url() {
        let url = |u: &str| webhook_url(Some(u), None, "vox").unwrap();
        assert_eq!(
            url("http://127.0.0.1:3000"),
            "http://127.0.0.1:3000/webhooks/vox"
        );
        assert_eq!(url("https://x.example/"), "https://x.example/webhooks/vox");
        assert_eq!(
            url("https://x.example/webhooks/vox?token=a"),
            "https://x.example/webhooks/vox?token=a"
        );
        assert!(webhook_url(None, None, "vox").is_err());
    }

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("dev-0a1B_~."), "dev-0a1B_~.");
    }
}
