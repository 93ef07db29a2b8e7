//! The pure part of the ingest path: method → provider → size → authentication on the raw bytes
//! → parse (into storable events) → opt-out policy. It decides what is stored and what is
//! refused; it does no I/O, so the Lambda handler, the local server, the benchmarks and the
//! fuzzers share it.

use crate::auth;
use crate::config::{Config, OptOutPolicy};
use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, DeliveryContext};
use crate::privacy;
use std::borrow::Cow;

/// One HTTP delivery, as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub method: &'a str,
    /// The `{provider}` route segment.
    pub provider: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The decoded `?token=` query parameter.
    pub query_token: Option<&'a str>,
    /// The request target as received, path and query (`/webhooks/twilio?x=1`), for the
    /// schemes that sign the URL (Twilio); `None` where unknown.
    pub target: Option<&'a str>,
    /// The exact raw bytes of the body (after API Gateway's base64, if it used it).
    pub body: &'a [u8],
    pub received_at_ms: i64,
}

/// What to store for an authenticated delivery.
#[derive(Debug)]
pub enum Intake<'a> {
    /// Store each event with the body (the raw one, or its redacted form).
    Events {
        provider: &'static str,
        events: Vec<CanonicalEvent>,
        body: Cow<'a, [u8]>,
    },
    /// Authenticated but unusable: keep it in quarantine and answer with `error`.
    Quarantine {
        provider: &'static str,
        error: Error,
        /// The raw body, or under the `redact` policy what it lets be kept of it
        /// ([`privacy::quarantine_body`]).
        body: Cow<'a, [u8]>,
    },
}

/// Decides what to do with a delivery. `Err` means: refuse, store nothing.
pub fn intake<'a>(config: &Config, delivery: &Delivery<'a>) -> Result<Intake<'a>> {
    if !delivery.method.eq_ignore_ascii_case("POST") {
        return Err(Error::MethodNotAllowed);
    }
    let provider_config = config.provider(delivery.provider)?;
    let provider = provider_config.provider;
    let size = delivery.body.len();
    if size > config.max_body_bytes {
        return Err(Error::PayloadTooLarge {
            size,
            limit: config.max_body_bytes,
        });
    }
    let urls = if provider_config.verifier.signs_url() {
        signed_urls(provider_config.public_url.as_deref(), delivery)
    } else {
        Vec::new()
    };
    let request = auth::Request {
        headers: delivery.headers,
        method: delivery.method,
        body: delivery.body,
        urls: &urls,
    };
    let verified = provider_config.verifier.verify_request(
        &request,
        delivery.query_token,
        delivery.received_at_ms.div_euclid(1000),
    )?;
    provider.admits(delivery.body)?;
    let ctx = DeliveryContext {
        received_at: delivery.received_at_ms,
        delivery_id: verified.delivery_id,
    };
    let events = match provider.parse(delivery.body, &ctx) {
        Ok(events) => events,
        Err(error) => {
            let body = match config.opt_out_policy {
                OptOutPolicy::Keep => Cow::Borrowed(delivery.body),
                OptOutPolicy::Redact => privacy::quarantine_body(delivery.body, &error.to_string()),
            };
            return Ok(Intake::Quarantine {
                provider: provider.name(),
                error,
                body,
            });
        }
    };
    if config.opt_out_policy == OptOutPolicy::Redact
        && privacy::opts_out_json(delivery.body) == Some(true)
    {
        // Fail closed: a body that opts out is never stored as sent.
        let redacted = privacy::redacted_json(delivery.body).ok_or_else(|| {
            Error::Internal("a parsed body that opts out could not be redacted".into())
        })?;
        // Parse what is stored, so the events and a later replay of the body agree.
        let original = events;
        let events = match provider.parse(&redacted, &ctx) {
            Ok(mut events) => {
                if let Some(key) = &config.number_index_key {
                    privacy::carry_number_keys(&mut events, &original, key);
                }
                events
            }
            Err(error) => {
                return Ok(Intake::Quarantine {
                    provider: provider.name(),
                    error,
                    body: Cow::Owned(redacted),
                });
            }
        };
        return Ok(Intake::Events {
            provider: provider.name(),
            events,
            body: Cow::Owned(redacted),
        });
    }
    Ok(Intake::Events {
        provider: provider.name(),
        events,
        body: Cow::Borrowed(delivery.body),
    })
}

/// The URLs a sender that signs the URL (Twilio) may have signed for this delivery: the public
/// URL configured for the provider, else the scheme of `X-Forwarded-Proto` (API Gateway's; https
/// without it) + the Host header + the path, with the request's query appended unchanged; each
/// with and without its scheme's default port, as Twilio's own validators accept.
pub fn signed_urls(configured: Option<&str>, delivery: &Delivery<'_>) -> Vec<String> {
    let target = delivery.target.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let base = match configured {
        Some(url) => url.trim().to_owned(),
        None => {
            let Some(host) = delivery
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
            else {
                return Vec::new();
            };
            let scheme = delivery
                .headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .and_then(|p| p.split(',').next())
                .map(str::trim)
                .filter(|p| matches!(*p, "http" | "https"))
                .unwrap_or("https");
            format!("{scheme}://{}{path}", host.trim())
        }
    };
    let url = match (query.is_empty(), base.contains('?')) {
        (true, _) => base,
        (false, false) => format!("{base}?{query}"),
        (false, true) => format!("{base}&{query}"),
    };
    let mut urls = vec![url.clone()];
    if let Some(other) = toggle_default_port(&url) {
        urls.push(other);
    }
    urls
}

/// `url` with its scheme's default port removed if present, or added if absent.
fn toggle_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let toggled = match hostport.strip_suffix(port) {
        Some(host) => host.to_owned(),
        None if hostport.rsplit_once(':').is_some_and(|(_, p)| {
            p.bytes().all(|b| b.is_ascii_digit()) && !hostport.ends_with(']')
        }) =>
        {
            return None; // another port: no variant
        }
        None => format!("{hostport}{port}"),
    };
    Some(format!("{scheme}://{userinfo}{toggled}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery<'a>(headers: &'a http::HeaderMap, target: &'a str) -> Delivery<'a> {
        Delivery {
            method: "POST",
            provider: "twilio",
            headers,
            query_token: None,
            target: Some(target),
            body: b"",
            received_at_ms: 0,
        }
    }

    #[test]
    fn signed_urls_come_from_the_configured_url_or_the_host_with_the_query_unchanged() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::HOST,
            "abc.execute-api.us-east-1.amazonaws.com".parse().unwrap(),
        );
        let d = delivery(&headers, "/webhooks/twilio?a=1&b=%20");
        assert_eq!(
            signed_urls(None, &d),
            [
                "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/twilio?a=1&b=%20",
                "https://abc.execute-api.us-east-1.amazonaws.com:443/webhooks/twilio?a=1&b=%20",
            ]
        );
        assert_eq!(
            signed_urls(Some("https://hooks.example.com:443/voice"), &d),
            [
                "https://hooks.example.com:443/voice?a=1&b=%20",
                "https://hooks.example.com/voice?a=1&b=%20"
            ]
        );
        assert_eq!(
            signed_urls(Some("http://h.example:8080/x"), &delivery(&headers, "/p")),
            ["http://h.example:8080/x"]
        );
        assert!(signed_urls(None, &delivery(&http::HeaderMap::new(), "/p")).is_empty());
    }
}
