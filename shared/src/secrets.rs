//! Ingest's configuration with the providers' secrets and tokens kept in one AWS Secrets Manager
//! secret, so that they never sit in the function's environment and a rotation needs no deploy.
//!
//! The secret is a JSON object whose keys are the variables that carry credentials
//! (`CALLHOOK_<PROVIDER>_SECRETS`, `CALLHOOK_<PROVIDER>_TOKENS`) and whose values are a
//! comma-separated string or an array of strings, exactly as the environment would give them:
//!
//! ```json
//! {"CALLHOOK_VOX_SECRETS": ["whsec_old…", "whsec_new…"], "CALLHOOK_CLAWOPS_SECRETS": "s1"}
//! ```
//!
//! [`LiveConfig`] reads it at init (a failure fails the cold start: without it nothing can be
//! verified), then again:
//! - in the background once [`refresh`](LiveConfig::refresh_every) has passed (5 minutes by
//!   default, `CALLHOOK_SECRET_REFRESH_SECONDS`), started by the first request after that;
//! - when a request fails verification, if the last read started at least
//!   [`MIN_REFETCH_ON_FAILURE`] ago (a minute), and the request is verified again with what it
//!   read. Forged requests therefore cost at most one read a minute per environment.
//!
//! Rotation: put the next secret beside the old one; wait a minute; have the provider sign with
//! the new one; once the deliveries it signed with the old one are in (its retries included),
//! remove the old one. A webhook signed with the new one is never refused: by the time the
//! provider uses it, any read that started within the last minute started after it was added, so
//! either the environment already holds it or a verification failure reads it again. A removed
//! secret stops being accepted within one refresh period.
//!
//! Locally, and wherever `CALLHOOK_PROVIDER_SECRET_ARN` is unset, the environment stays the source
//! and nothing is read.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::provider::REGISTRY;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// The variable naming the secret (its ARN); set by the template on ingest only.
pub const SECRET_ARN_VAR: &str = "CALLHOOK_PROVIDER_SECRET_ARN";
/// The variable overriding [`DEFAULT_REFRESH`], in seconds.
pub const REFRESH_VAR: &str = "CALLHOOK_SECRET_REFRESH_SECONDS";
/// How often a warm environment reads the secret again: what a removal takes to apply.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// The shortest time between two reads caused by verification failures.
pub const MIN_REFETCH_ON_FAILURE: Duration = Duration::from_secs(60);
/// The most one read may take, retries included. A read caused by a verification failure runs
/// inside a request, whose sender waits 5–10 s for an answer.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the secret's JSON comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    /// A secret held in memory and changed by its owner: the tests' and benchmarks' stand-in.
    Memory(Arc<Mutex<String>>),
}

impl SecretSource {
    /// The Secrets Manager secret `secret_id`, through the SDK configuration `sdk`
    /// (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, the SDK's own variable, points it elsewhere).
    pub fn secrets_manager(sdk: &aws_config::SdkConfig, secret_id: &str) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(FETCH_TIMEOUT)
            .build();
        let mut config =
            aws_sdk_secretsmanager::config::Builder::from(sdk).timeout_config(timeouts);
        if let Some(endpoint) = crate::handlers::service_endpoint("SECRETS_MANAGER") {
            config = config.endpoint_url(endpoint);
        }
        Self::SecretsManager {
            client: aws_sdk_secretsmanager::Client::from_conf(config.build()),
            secret_id: secret_id.to_owned(),
        }
    }

    async fn fetch(&self) -> Result<String> {
        match self {
            Self::SecretsManager { client, secret_id } => {
                let out = client
                    .get_secret_value()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|e| {
                        // The SDK's error names the operation and the service's error code; it
                        // never holds the secret.
                        let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
                        Error::Config(format!("reading the provider secret failed: {e}"))
                    })?;
                out.secret_string.ok_or_else(|| {
                    Error::Config(
                        "the provider secret has no SecretString (binary secrets are not read)"
                            .into(),
                    )
                })
            }
            Self::Memory(value) => Ok(value.lock().map(|v| v.clone()).unwrap_or_default()),
        }
    }
}

/// The variables the secret `json` holds, as `(name, comma-separated value)` pairs. Only
/// providers' credentials may be in it: any other key is refused (by name; values never appear
/// in errors).
pub fn secret_vars(json: &str) -> Result<Vec<(String, String)>> {
    let object = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(object)) => object,
        Ok(_) | Err(_) => {
            return Err(Error::Config(
                "the provider secret is not a JSON object of CALLHOOK_<PROVIDER>_SECRETS / \
                 _TOKENS values"
                    .into(),
            ));
        }
    };
    let allowed = |key: &str| {
        REGISTRY.iter().any(|p| {
            let prefix = format!("CALLHOOK_{}_", p.name().to_ascii_uppercase());
            key.strip_prefix(&prefix)
                .is_some_and(|rest| matches!(rest, "SECRETS" | "TOKENS" | "PUBLIC_KEYS"))
        })
    };
    object
        .into_iter()
        .map(|(key, value)| {
            if !allowed(&key) {
                return Err(Error::Config(format!(
                    "the provider secret holds `{}`, which is not a provider's secrets, tokens or \
                     public keys (CALLHOOK_<PROVIDER>_SECRETS, _TOKENS or _PUBLIC_KEYS)",
                    key.chars().filter(|c| c.is_ascii_graphic()).take(60).collect::<String>()
                )));
            }
            let value = match value {
                Value::String(list) => list,
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) if !s.contains(',') => Ok(s),
                        _ => Err(Error::Config(format!(
                            "{key} in the provider secret: every item must be a string without commas"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?
                    .join(","),
                Value::Null => String::new(),
                _ => {
                    return Err(Error::Config(format!(
                        "{key} in the provider secret must be a string or an array of strings"
                    )));
                }
            };
            Ok((key, value))
        })
        .collect()
}

#[derive(Debug)]
struct Current {
    config: Arc<Config>,
    /// Bumped whenever the configuration changes.
    generation: u64,
    /// The secret the configuration was built with, to tell a change from a re-read.
    secret: String,
}

/// Ingest's configuration, kept in step with the provider secret. Shared by every request of an
/// environment; cheap to read ([`current`](Self::current) clones an `Arc`).
#[derive(Debug)]
pub struct LiveConfig {
    /// The environment's variables (no credentials in AWS), the base the secret completes.
    base: Vec<(String, String)>,
    source: Option<SecretSource>,
    current: RwLock<Current>,
    /// When the last read started; held while a read runs, so reads never overlap.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// A background refresh is spawned and not yet done.
    refreshing: AtomicBool,
    refresh_every: Duration,
    min_refetch: Duration,
}

impl LiveConfig {
    /// A configuration that never changes: the local stack's, or one without a secret.
    pub fn fixed(config: Config) -> Self {
        Self {
            base: Vec::new(),
            source: None,
            current: RwLock::new(Current {
                config: Arc::new(config),
                generation: 0,
                secret: String::new(),
            }),
            last_fetch: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
            refresh_every: DEFAULT_REFRESH,
            min_refetch: MIN_REFETCH_ON_FAILURE,
        }
    }

    /// Reads `source` once and builds the configuration from `base` and the secret. Fails if the
    /// secret cannot be read or does not make a valid configuration.
    pub async fn load(base: Vec<(String, String)>, source: SecretSource) -> Result<Self> {
        let started = Instant::now();
        let secret = source.fetch().await?;
        let config = build(&base, &secret)?;
        Ok(Self {
            base,
            source: Some(source),
            current: RwLock::new(Current {
                config: Arc::new(config),
                generation: 0,
                secret,
            }),
            last_fetch: tokio::sync::Mutex::new(Some(started)),
            refreshing: AtomicBool::new(false),
            refresh_every: DEFAULT_REFRESH,
            min_refetch: MIN_REFETCH_ON_FAILURE,
        })
    }

    /// From the environment: the secret named by [`SECRET_ARN_VAR`] when set, else the
    /// environment alone.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self> {
        let base: Vec<(String, String)> = std::env::vars().collect();
        let secret_id = base
            .iter()
            .find(|(k, _)| k == SECRET_ARN_VAR)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let refresh = match base.iter().find(|(k, _)| k == REFRESH_VAR) {
            None => DEFAULT_REFRESH,
            Some((_, v)) => v
                .trim()
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{REFRESH_VAR} must be a positive number of seconds"
                    ))
                })?,
        };
        match secret_id {
            None => Ok(Self::fixed(Config::from_vars(base)?)),
            Some(id) => Ok(Self::load(base, SecretSource::secrets_manager(sdk, &id))
                .await?
                .with_intervals(refresh, MIN_REFETCH_ON_FAILURE)),
        }
    }

    /// Sets the background refresh period and the shortest time between reads caused by
    /// verification failures.
    pub fn with_intervals(mut self, refresh_every: Duration, min_refetch: Duration) -> Self {
        self.refresh_every = refresh_every;
        self.min_refetch = min_refetch;
        self
    }

    /// The background refresh period.
    pub fn refresh_every(&self) -> Duration {
        self.refresh_every
    }

    /// Whether a secret is read at all.
    pub fn is_live(&self) -> bool {
        self.source.is_some()
    }

    /// The configuration now and its generation; starts a background refresh when one is due.
    pub fn current(self: &Arc<Self>) -> (Arc<Config>, u64) {
        if self.source.is_some() && self.refresh_due() {
            let live = Arc::clone(self);
            tokio::spawn(async move {
                live.refetch("periodic", live.refresh_every).await;
                live.refreshing.store(false, Ordering::Release);
            });
        }
        let current = self.read();
        (Arc::clone(&current.config), current.generation)
    }

    /// After a request failed verification with generation `seen`: a newer configuration, read
    /// now if the last read started at least a minute ago, or `None` when there is nothing newer.
    pub async fn after_failure(&self, seen: u64) -> Option<Arc<Config>> {
        self.source.as_ref()?;
        if let Some(newer) = self.newer_than(seen) {
            return Some(newer);
        }
        self.refetch("verification_failure", self.min_refetch).await;
        self.newer_than(seen)
    }

    /// Reads the secret now, whenever it was last read. Returns whether the configuration changed.
    pub async fn refresh_now(&self) -> bool {
        let before = self.read().generation;
        self.refetch("requested", Duration::ZERO).await;
        self.read().generation != before
    }

    fn newer_than(&self, seen: u64) -> Option<Arc<Config>> {
        let current = self.read();
        (current.generation != seen).then(|| Arc::clone(&current.config))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    fn refresh_due(&self) -> bool {
        let Ok(last) = self.last_fetch.try_lock() else {
            return false; // a read is running
        };
        let due = last.is_none_or(|at| at.elapsed() >= self.refresh_every);
        drop(last);
        due && !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// Reads the secret unless a read started less than `not_within` ago, and takes the
    /// configuration it makes if it differs. A failed read or an invalid secret keeps the
    /// configuration as it was (logged, without the secret).
    async fn refetch(&self, reason: &'static str, not_within: Duration) {
        let Some(source) = &self.source else { return };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < not_within) {
            return;
        }
        *last = Some(Instant::now());
        let secret = match source.fetch().await {
            Ok(secret) => secret,
            Err(error) => {
                tracing::warn!(reason, error = %error, "provider secret not refreshed");
                return;
            }
        };
        if secret == self.read().secret {
            return;
        }
        match build(&self.base, &secret) {
            Ok(config) => {
                let providers: Vec<&str> =
                    config.providers.iter().map(|p| p.provider.name()).collect();
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                current.config = Arc::new(config);
                current.generation += 1;
                current.secret = secret;
                tracing::info!(
                    reason,
                    generation = current.generation,
                    providers = ?providers,
                    "provider secret changed"
                );
            }
            Err(error) => {
                tracing::error!(reason, error = %error, "provider secret changed but is not usable; kept the previous one");
            }
        }
        drop(last);
    }
}

/// The configuration of `base` completed by the secret's variables (which take precedence).
fn build(base: &[(String, String)], secret: &str) -> Result<Config> {
    let vars = secret_vars(secret)?;
    Config::from_vars(base.iter().cloned().chain(vars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Signature;

    fn memory(json: &str) -> (SecretSource, Arc<Mutex<String>>) {
        let cell = Arc::new(Mutex::new(json.to_owned()));
        (SecretSource::Memory(Arc::clone(&cell)), cell)
    }

    /// Whether `config` accepts a ClawOps webhook signed with `secret`.
    fn accepts(config: &Config, secret: &str) -> bool {
        let body = br#"{"event":"call.initiated"}"#;
        let signer =
            Config::from_vars([("CALLHOOK_CLAWOPS_SECRETS".into(), secret.into())]).unwrap();
        let Signature::Headers(signed) = signer
            .provider("clawops")
            .unwrap()
            .verifier
            .sign(body, "", 0)
        else {
            panic!("an HMAC scheme signs with headers");
        };
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed {
            headers.insert(name, value.parse().unwrap());
        }
        let verifier = &config.provider("clawops").unwrap().verifier;
        verifier.verify(&headers, None, body, 0).is_ok()
    }

    #[test]
    fn the_secret_holds_lists_or_strings_of_known_credentials_only() {
        let vars = secret_vars(r#"{"CALLHOOK_VOX_TOKENS": ["a", "b"], "CALLHOOK_CLAWOPS_SECRETS": "s1, s2", "CALLHOOK_SYNTHFLOW_TOKENS": null}"#).unwrap();
        assert!(vars.contains(&("CALLHOOK_VOX_TOKENS".into(), "a,b".into())));
        assert!(vars.contains(&("CALLHOOK_CLAWOPS_SECRETS".into(), "s1, s2".into())));
        for bad in [
            r#"{"CALLHOOK_EVENTS_TABLE": "x"}"#,
            r#"{"CALLHOOK_VOX_AUTH": "none"}"#,
            r#"{"CALLHOOK_ACME_SECRETS": "x"}"#,
            r#"{"CALLHOOK_VOX_TOKENS": ["a,b"]}"#,
            r#"{"CALLHOOK_VOX_TOKENS": 7}"#,
            r#"["CALLHOOK_VOX_TOKENS"]"#,
            "not json",
        ] {
            let error = secret_vars(bad).unwrap_err().to_string();
            assert!(!error.contains("a,b"), "{error}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_accepts_both_during_the_overlap_then_only_the_new() {
        let (source, cell) = memory(r#"{"CALLHOOK_CLAWOPS_SECRETS": "old"}"#);
        let live = Arc::new(LiveConfig::load(Vec::new(), source).await.unwrap());
        let (config, generation) = live.current();
        assert!(accepts(&config, "old") && !accepts(&config, "new"));

        // The next secret is added beside the old one; a minute later the provider signs with it.
        *cell.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRETS": ["old", "new"]}"#.into();
        tokio::time::advance(MIN_REFETCH_ON_FAILURE).await;
        let fresh = live.after_failure(generation).await.expect("re-read");
        assert!(accepts(&fresh, "new") && accepts(&fresh, "old"));

        // The old one is removed: refused once the periodic refresh has run.
        *cell.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRETS": ["new"]}"#.into();
        tokio::time::advance(DEFAULT_REFRESH).await;
        let _ = live.current(); // starts the refresh
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        let (config, _) = live.current();
        assert!(accepts(&config, "new") && !accepts(&config, "old"));
    }

    #[tokio::test(start_paused = true)]
    async fn verification_failures_read_the_secret_at_most_once_a_minute() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (source, cell) = memory(r#"{"CALLHOOK_CLAWOPS_SECRETS": "s"}"#);
        let live = LiveConfig::load(Vec::new(), source).await.unwrap();
        // Count reads by watching the secret change under the reader: each read that sees a
        // new value bumps the generation.
        let mut generation = 0;
        for round in 0..=120 {
            *cell.lock().unwrap() = format!(r#"{{"CALLHOOK_CLAWOPS_SECRETS": "s{round}"}}"#);
            if live.after_failure(generation).await.is_some() {
                reads.fetch_add(1, Ordering::Relaxed);
                generation = live.read().generation;
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // 121 failures over two minutes: a read at the first minute since init, one at the second.
        assert_eq!(reads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_unusable_new_secret_keeps_the_previous_configuration() {
        let (source, cell) = memory(r#"{"CALLHOOK_CLAWOPS_SECRETS": "s"}"#);
        let live = LiveConfig::load(Vec::new(), source).await.unwrap();
        *cell.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRET": "typo"}"#.into();
        assert!(!live.refresh_now().await);
        assert!(accepts(&live.read().config, "s"));
        *cell.lock().unwrap() = "{".into();
        assert!(!live.refresh_now().await);
        *cell.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRETS": "t"}"#.into();
        assert!(live.refresh_now().await);
        assert!(accepts(&live.read().config, "t"));
    }

    #[tokio::test]
    async fn an_unreadable_or_invalid_secret_fails_the_cold_start() {
        let (source, _) = memory(r#"{"CALLHOOK_VOX_AUTH": "none"}"#);
        assert!(LiveConfig::load(Vec::new(), source).await.is_err());
    }
}
