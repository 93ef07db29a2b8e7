//! The ingest kernel, as the benchmarks time it: authenticate + parse + normalize + build the
//! DynamoDB items of one delivery, with exactly the functions the ingest Lambda calls
//! ([`intake`], [`EventItems`]) and no I/O. The payloads are the files `bench/python/bodies.py`
//! writes, so the Python reference times the very same bytes.

use callhook::intake::{Delivery, Intake, intake};
use callhook::store::EventItems;
use callhook::{Config, Result};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The secret every provider is configured with: all three authenticate by HMAC-SHA256 over the
/// body, as `bench/python/kernel.py` does, so the cost grows with the body for each of them.
pub const SECRET: &str = "bench-secret";
/// `received_at` of every delivery (fixed, so the work is the same on every iteration).
pub const RECEIVED_AT_MS: i64 = 1_800_000_000_000;

/// One payload of `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Payload {
    pub name: String,
    pub file: String,
    pub provider: String,
    pub bytes: usize,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    payloads: Vec<Payload>,
}

/// Where the payloads are: `CALLHOOK_BENCH_BODIES`, else `bench/out/bodies`.
pub fn bodies_dir() -> PathBuf {
    std::env::var_os("CALLHOOK_BENCH_BODIES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../out/bodies"),
        PathBuf::from,
    )
}

/// The payloads and their bytes, in manifest order.
pub fn payloads(dir: &Path) -> std::io::Result<Vec<(Payload, Vec<u8>)>> {
    let manifest = std::fs::read(dir.join("manifest.json"))?;
    let manifest: Manifest = serde_json::from_slice(&manifest)?;
    manifest
        .payloads
        .into_iter()
        .map(|payload| {
            let body = std::fs::read(dir.join(&payload.file))?;
            Ok((payload, body))
        })
        .collect()
}

/// Every provider on, each with HMAC-SHA256 over the body under its default header and prefix.
pub fn config() -> Result<Config> {
    let mut vars = Vec::new();
    for provider in callhook::provider::REGISTRY {
        let provider = provider.name().to_ascii_uppercase();
        vars.push((
            format!("CALLHOOK_{provider}_AUTH"),
            "hmac-sha256".to_owned(),
        ));
        vars.push((format!("CALLHOOK_{provider}_SECRETS"), SECRET.to_owned()));
    }
    Config::from_vars(vars)
}

/// The headers a provider sends with `body`, signed with [`SECRET`].
pub fn signed_headers(config: &Config, provider: &str, body: &[u8]) -> Result<HeaderMap> {
    let verifier = &config.provider(provider)?.verifier;
    let mut headers = HeaderMap::new();
    if let callhook::auth::Signature::Headers(pairs) =
        verifier.sign(body, "bench", RECEIVED_AT_MS / 1000)
    {
        for (name, value) in pairs {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| callhook::Error::Internal(e.to_string()))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| callhook::Error::Internal(e.to_string()))?;
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

/// The whole kernel for one delivery: what the ingest handler computes before its first write.
/// Returns the items' attribute maps (so nothing is optimized away) and the number of events.
pub fn kernel(config: &Config, provider: &str, headers: &HeaderMap, body: &[u8]) -> Result<Items> {
    let delivery = Delivery {
        method: "POST",
        provider,
        headers,
        query_token: None,
        target: None,
        body,
        received_at_ms: RECEIVED_AT_MS,
    };
    let mut out = Items::default();
    match intake(config, &delivery)? {
        Intake::Events { events, body, .. } => {
            out.items
                .extend(EventItems::for_delivery(&events, &body, None)?.to_attributes()?);
            out.events = events.len();
        }
        Intake::Quarantine {
            provider,
            error,
            body,
        } => {
            out.items.extend(
                EventItems::for_quarantine(provider, &error, &body, RECEIVED_AT_MS, None)?
                    .to_attributes()?,
            );
        }
    }
    Ok(out)
}

/// What [`kernel`] built.
#[derive(Debug, Default)]
pub struct Items {
    pub events: usize,
    pub items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_fixture_goes_through_the_kernel_as_events() {
        let config = config().unwrap();
        for fixture in callhook_local::fixtures::ALL {
            let headers = signed_headers(&config, fixture.provider, fixture.body).unwrap();
            let items = kernel(&config, fixture.provider, &headers, fixture.body).unwrap();
            assert!(items.events >= 1, "{}", fixture.name);
            // One item per event, plus the body and its manifest when several events share it.
            let shared = if items.events > 1 { 2 } else { 0 };
            assert!(
                items.items.len() == items.events || items.items.len() == items.events + shared,
                "{}",
                fixture.name
            );
        }
    }

    #[test]
    fn a_wrong_signature_is_refused_by_the_kernel() {
        let config = config().unwrap();
        let body = br#"{"event":"call.completed"}"#;
        let headers = signed_headers(&config, "clawops", b"something else").unwrap();
        assert!(kernel(&config, "clawops", &headers, body).is_err());
    }
}
