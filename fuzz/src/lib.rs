//! What each fuzz target checks, beyond "never panics".
//!
//! - `verify`: arbitrary signature headers, tokens and bodies against all three schemes never
//!   pass, unless they are the genuine signature, which always passes.
//! - `parse_<provider>`: a parsed body gives events with a call id and a dedupe key, already
//!   storable in DynamoDB (normalizing them again changes nothing), and merging them is
//!   idempotent.
//! - `merge`: events parsed from several bodies, made one call's and kept once per dedupe key (as
//!   the events table keeps them), merge to the same record in forward and reverse order, and
//!   merging them again changes nothing.
#![forbid(unsafe_code)]

use callhook::auth::Signature;
use callhook::config::Config;
use callhook::event::DeliveryContext;
use callhook::provider;
use callhook::record::CallRecord;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::OnceLock;

const NOW: i64 = 1_780_000_000;
const TOKEN: &str = "fuzz-token";
const SECRET: &str = "fuzz-secret";
const SW_SECRET: &str = "whsec_ZnV6ei1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=";

/// Vox by token, ClawOps by HMAC, Synthflow by Standard Webhooks.
fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let vars = [
            ("CALLHOOK_VOX_TOKENS", TOKEN),
            ("CALLHOOK_CLAWOPS_SECRETS", SECRET),
            ("CALLHOOK_SYNTHFLOW_AUTH", "standard-webhooks"),
            ("CALLHOOK_SYNTHFLOW_SECRETS", SW_SECRET),
        ];
        Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
            .unwrap_or_else(|e| panic!("fuzz configuration: {e}"))
    })
}

fn ctx() -> DeliveryContext {
    DeliveryContext {
        received_at: NOW * 1000,
        delivery_id: None,
    }
}

/// `data` = credential bytes, 0x00, body. The credential goes into every place a scheme reads
/// (split on newlines for Standard Webhooks' three headers).
pub fn verify(data: &[u8]) {
    let (credential, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(credential);
    let mut lines = text.split('\n');
    let mut headers = HeaderMap::new();
    for name in [
        "x-clawops-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ] {
        if let (Some(line), Ok(name)) = (lines.next(), HeaderName::from_bytes(name.as_bytes())) {
            if let Ok(value) = HeaderValue::from_str(line) {
                headers.insert(name, value);
            }
        }
    }
    for provider in &config().providers {
        let verifier = &provider.verifier;
        if verifier.verify(&headers, Some(&text), body, NOW).is_ok() {
            assert!(
                genuine(provider.provider.name(), verifier, &headers, &text, body),
                "{} accepted a forged delivery",
                provider.provider.name()
            );
        }
        // The genuine signature always passes.
        let id = "msg_fuzz";
        let (genuine_headers, token) = match verifier.sign(body, id, NOW) {
            Signature::Headers(list) => {
                let mut map = HeaderMap::new();
                for (name, value) in list {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        map.insert(name, value);
                    }
                }
                (map, None)
            }
            Signature::QueryToken(token) => (HeaderMap::new(), Some(token)),
            Signature::Nothing => (HeaderMap::new(), None),
        };
        assert!(
            verifier
                .verify(&genuine_headers, token.as_deref(), body, NOW)
                .is_ok(),
            "{} refused a genuine delivery",
            provider.provider.name()
        );
    }
}

/// Whether what was presented is the genuine credential for `body`.
fn genuine(
    provider: &str,
    verifier: &callhook::auth::Verifier,
    headers: &HeaderMap,
    token: &str,
    body: &[u8],
) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim()
    };
    let signed = |id: &str, at: i64| match verifier.sign(body, id, at) {
        Signature::Headers(list) => list,
        _ => Vec::new(),
    };
    match provider {
        "vox" => token == TOKEN,
        "clawops" => signed("", NOW)
            .iter()
            .any(|(_, value)| value.eq_ignore_ascii_case(header("x-clawops-signature"))),
        _ => {
            let Ok(at) = header("webhook-timestamp").parse::<i64>() else {
                return false;
            };
            (at - NOW).abs() <= 300
                && signed(header("webhook-id"), at)
                    .iter()
                    .any(|(name, value)| {
                        name == "webhook-signature"
                            && header("webhook-signature")
                                .split(' ')
                                .any(|presented| presented == value)
                    })
        }
    }
}

/// Parses `data` as `provider`'s webhook.
pub fn parse(provider: &str, data: &[u8]) {
    let Some(parser) = provider::lookup(provider) else {
        return;
    };
    let Ok(events) = parser.parse(data, &ctx()) else {
        return;
    };
    assert!(!events.is_empty(), "a parsed body gives at least one event");
    let mut record: Option<CallRecord> = None;
    for event in &events {
        assert!(
            !event.call_id.trim().is_empty(),
            "an event without a call id"
        );
        assert!(
            !event.dedupe_key.is_empty(),
            "an event without a dedupe key"
        );
        assert_eq!(event.provider, provider);
        let mut again = event.clone();
        assert!(
            callhook::storable::storable_event(&mut again).is_ok() && &again == event,
            "a parsed event is not storable as it is"
        );
        let record = record.get_or_insert_with(|| CallRecord::new(provider, &event.call_id));
        record.merge(event);
        let once = record.clone();
        record.merge(event);
        assert_eq!(&once, record, "merging an event twice changed the record");
        let _ = record.to_contract_json();
    }
}

/// `data` = a provider selector byte, then bodies separated by 0xFF.
pub fn merge(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let provider = provider::REGISTRY[usize::from(*selector) % provider::REGISTRY.len()];
    let mut events = Vec::new();
    for body in rest.split(|b| *b == 0xFF).take(8) {
        if let Ok(parsed) = provider.parse(body, &ctx()) {
            events.extend(parsed);
        }
    }
    // Messages are not merged into call records.
    events.retain(|e| e.event_type != callhook::EventType::MessageReceived);
    // The events table keeps one event per dedupe key (the first stored; a later delivery with
    // the key is answered as a duplicate), so the merge never sees two. Two bodies can share a
    // key and differ: a provider that sends no delivery id (Bland) is keyed on its delivery's
    // identity, and its retries need not be byte-identical.
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.dedupe_key.clone()));
    if events.is_empty() {
        return;
    }
    for event in &mut events {
        event.call_id = "fuzz-call".to_owned();
    }
    let forward = CallRecord::from_events(&events);
    let backward = CallRecord::from_events(events.iter().rev());
    assert_eq!(forward, backward, "the merge depends on the order");
    if let Some(record) = forward {
        let mut again = record.clone();
        for event in &events {
            again.merge(event);
        }
        assert_eq!(
            record, again,
            "merging the same events again changed the record"
        );
    }
}
