//! The pure part of the ingest path: method → provider → size → authentication on the raw bytes
//! → parse (into storable events) → opt-out policy. It decides what is stored and what is
//! refused; it does no I/O, so the Lambda handler, the local server, the benchmarks and the
//! fuzzers share it.

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
    let verified = provider_config.verifier.verify(
        delivery.headers,
        delivery.query_token,
        delivery.body,
        delivery.received_at_ms.div_euclid(1000),
    )?;
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
