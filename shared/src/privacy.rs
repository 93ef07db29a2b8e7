//! The opt-out policy: when a payload says `opt_out_sensitive_data_storage: true` and the stack is
//! configured to redact, transcripts and recording URLs are removed and phone numbers masked (all
//! but the last four digits) before anything is stored — in the stored raw body itself, so a
//! replay can never bring them back.
//!
//! A payload that does not carry the flag (a Vox `mid_call`) cannot be redacted at the door;
//! [`redact_record`] removes what such events left in a call record once the flag is known.
//!
//! Whether a body opts out is read from its raw JSON ([`opts_out_json`]), every entry of every
//! object included: a key repeated in one object counts each time, where a parsed `Value` would
//! keep only its last occurrence, so a flag cannot hide behind a duplicate.
//!
//! Quarantine under `redact` ([`quarantine_body`]): a verified body that could not be used is kept
//! for inspection, and may be exactly the body of an opted-out call (a provider's schema change
//! can break parsing while the body is still JSON carrying the flag):
//!
//! - JSON that opts out is redacted like an accepted body before it is kept.
//! - JSON that does not opt out is kept verbatim, as it is under `keep`. The policy is per
//!   payload: an accepted body without the flag is stored verbatim in the events table too, and
//!   the quarantine exists to show why a body was refused, which needs the body.
//! - A body that is not JSON callhook can read (not JSON, truncated, invalid UTF-8, nested past
//!   the parser's limit) cannot be told to opt out or not, nor redacted: only its top-level keys
//!   (those read before the error, digits masked like phone numbers), its size and the reason are
//!   kept, never its bytes.

use crate::record::CallRecord;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

const FLAG: &str = "opt_out_sensitive_data_storage";
const REMOVED: [&str; 7] = [
    "transcript",
    "transcript_with_tool_calls",
    "transcript_object",
    "recording_url",
    "recording_multi_channel_url",
    "public_log_url",
    "content",
];
const NUMBERS: [&str; 8] = [
    "from_number",
    "to_number",
    "call_from",
    "call_to",
    "from",
    "to",
    "phone_number",
    "phone",
];

/// Whether any object of the payload sets the opt-out flag.
pub fn opts_out(payload: &Value) -> bool {
    match payload {
        Value::Object(map) => {
            map.get(FLAG).and_then(Value::as_bool) == Some(true) || map.values().any(opts_out)
        }
        Value::Array(items) => items.iter().any(opts_out),
        _ => false,
    }
}

/// Redacts a payload in place.
pub fn redact_payload(payload: &mut Value) {
    match payload {
        Value::Object(map) => {
            for key in REMOVED {
                map.remove(key);
            }
            for (key, value) in map.iter_mut() {
                if NUMBERS.contains(&key.as_str()) {
                    mask_value(value);
                } else {
                    redact_payload(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_payload),
        _ => {}
    }
}

/// Redacts a call record in place (for what arrived before the flag was known).
pub fn redact_record(record: &mut CallRecord) {
    record.transcript.clear();
    record.recording_url = None;
    for number in [&mut record.from_number, &mut record.to_number]
        .into_iter()
        .flatten()
    {
        *number = mask(number);
    }
    if let Some(lead) = &mut record.lead {
        for value in lead.values_mut() {
            redact_payload(value);
        }
        for key in NUMBERS {
            if let Some(value) = lead.get_mut(key) {
                mask_value(value);
            }
        }
    }
}

/// Redacts a record whose call opted out (the `redact` policy's hook on every merge).
pub fn redact_opted_out(record: &mut CallRecord) {
    if record.sensitive_data_opt_out == Some(true) {
        redact_record(record);
    }
}

/// Masks a phone number field. Providers send numbers as JSON numbers too (ClawOps reads them
/// as text), so a number becomes its masked text; other values under a number's key (a nested
/// object) are redacted like any payload.
fn mask_value(value: &mut Value) {
    match value {
        Value::String(s) => *s = mask(s),
        Value::Number(n) => {
            let masked = mask(&n.to_string());
            *value = Value::String(masked);
        }
        other => redact_payload(other),
    }
}

/// Masks every digit but the last four: `01012345678` → `*******5678`.
pub fn mask(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 4 <= digits { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// Whether a raw JSON body opts out: any object of it, any occurrence of a repeated key
/// included, sets the flag to `true`. `None` when the body is not JSON callhook can read.
pub fn opts_out_json(body: &[u8]) -> Option<bool> {
    serde_json::from_slice::<Scan>(body)
        .ok()
        .map(|scan| scan.opts_out)
}

/// The body parsed, redacted and written again; `None` when it is not JSON callhook can read.
pub fn redacted_json(body: &[u8]) -> Option<Vec<u8>> {
    let mut payload: Value = serde_json::from_slice(body).ok()?;
    redact_payload(&mut payload);
    serde_json::to_vec(&payload).ok()
}

/// What the `redact` policy keeps of a verified body that could not be used (see the module
/// doc); `reason` is why it was refused.
pub fn quarantine_body<'a>(body: &'a [u8], reason: &str) -> Cow<'a, [u8]> {
    match opts_out_json(body) {
        Some(false) => Cow::Borrowed(body),
        Some(true) => match redacted_json(body) {
            Some(redacted) => Cow::Owned(redacted),
            None => Cow::Owned(summary(body, reason)),
        },
        None => Cow::Owned(summary(body, reason)),
    }
}

/// At most this many top-level keys, of at most this many bytes each, describe a body whose
/// bytes are not kept: enough to recognise a payload, bounded for a hostile one.
const SUMMARY_KEYS: usize = 64;
const SUMMARY_KEY_BYTES: usize = 128;

/// A JSON description of a body that is not kept: its top-level keys, size and the reason.
fn summary(body: &[u8], reason: &str) -> Vec<u8> {
    serde_json::json!({
        "redacted": "The body could not be read as JSON, so under the redact opt-out policy only its top-level keys are kept.",
        "reason": reason,
        "top_level_keys": top_level_keys(body),
        "size_bytes": body.len(),
    })
    .to_string()
    .into_bytes()
}

/// The keys of a body's top-level object read before the first error, if it starts as one.
fn top_level_keys(body: &[u8]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    // The error is why the body is in quarantine; the keys read before it are what is wanted.
    let _ = de.deserialize_map(TopLevelKeys(&mut keys));
    keys
}

struct TopLevelKeys<'k>(&'k mut Vec<String>);

impl<'de> Visitor<'de> for TopLevelKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if self.0.len() < SUMMARY_KEYS {
                let mut end = key.len().min(SUMMARY_KEY_BYTES);
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                // A key can be a phone number (objects keyed by caller): masked like one.
                self.0.push(mask(&key[..end]));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// What a JSON value says about the flag: whether it is `true` itself, and whether an object
/// inside it sets the flag.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    is_true: bool,
    opts_out: bool,
}

impl<'de> Deserialize<'de> for Scan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScanVisitor)
    }
}

struct ScanVisitor;

impl<'de> Visitor<'de> for ScanVisitor {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scan, E> {
        Ok(Scan {
            is_true: v,
            opts_out: false,
        })
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scan, E> {
        Ok(Scan::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scan, E> {
        Ok(Scan::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scan, E> {
        Ok(Scan::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scan, E> {
        Ok(Scan::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scan, E> {
        Ok(Scan::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scan, A::Error> {
        let mut opts_out = false;
        while let Some(item) = seq.next_element::<Scan>()? {
            opts_out |= item.opts_out;
        }
        Ok(Scan {
            is_true: false,
            opts_out,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        let mut opts_out = false;
        while let Some(IsFlag(is_flag)) = map.next_key::<IsFlag>()? {
            let value = map.next_value::<Scan>()?;
            opts_out |= value.opts_out || (is_flag && value.is_true);
        }
        Ok(Scan {
            is_true: false,
            opts_out,
        })
    }
}

/// An object key, compared with the flag's name without being kept.
struct IsFlag(bool);

impl<'de> Deserialize<'de> for IsFlag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(IsFlagVisitor)
    }
}

struct IsFlagVisitor;

impl<'de> Visitor<'de> for IsFlagVisitor {
    type Value = IsFlag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<IsFlag, E> {
        Ok(IsFlag(key == FLAG))
    }
}

/// The number indexes' key of a phone number under the redact policy: `h#` and 128 bits of
/// HMAC-SHA256 under the stack's number index key. Computed from the number as sent, before it
/// is masked, so a lookup by the real number finds an opted-out call without the index (or
/// anything else stored) holding the number.
pub fn number_index_key(number: &str, key: &[u8]) -> Option<String> {
    use hmac::{Hmac, Mac};
    let number = number.trim();
    if number.is_empty() {
        return None;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(number.as_bytes());
    Some(format!(
        "h#{}",
        hex::encode(&mac.finalize().into_bytes()[..16])
    ))
}

/// Puts on each event of a redacted body the number index keys of the numbers the body held
/// before redaction (`original`: the events of the body as sent, in the same order).
pub fn carry_number_keys(
    events: &mut [crate::event::CanonicalEvent],
    original: &[crate::event::CanonicalEvent],
    key: &[u8],
) {
    use crate::event::EventData;
    for (event, before) in events.iter_mut().zip(original) {
        if let (EventData::Call(patch), EventData::Call(sent)) = (&mut event.data, &before.data) {
            patch.from_key = sent
                .from_number
                .as_deref()
                .and_then(|n| number_index_key(n, key));
            patch.to_key = sent
                .to_number
                .as_deref()
                .and_then(|n| number_index_key(n, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask("01012345678"), "*******5678");
        assert_eq!(mask("+1 234-334-546"), "+* ***-**4-546");
        assert_eq!(mask("123"), "123");
        assert_eq!(mask("already ****"), "already ****");
        assert_eq!(mask(&mask("01012345678")), "*******5678", "idempotent");
    }

    #[test]
    fn redacts_transcripts_recordings_and_numbers_everywhere() {
        let mut payload = json!({
            "event": "call_ended",
            "call": {
                "call_id": "c1",
                "from_number": "01012345678",
                "call_to": "07012345678",
                "transcript": [{"role": "agent", "content": "hi"}],
                "transcript_with_tool_calls": [],
                "recording_url": "https://x/r.ogg",
                "event_data": {"role": "user", "content": "secret words"},
                "opt_out_sensitive_data_storage": true
            },
            "lead": {"phone_number": "+1234334546", "name": "David"}
        });
        assert!(opts_out(&payload));
        redact_payload(&mut payload);
        assert_eq!(
            payload,
            json!({
                "event": "call_ended",
                "call": {
                    "call_id": "c1",
                    "from_number": "*******5678",
                    "call_to": "*******5678",
                    "event_data": {"role": "user"},
                    "opt_out_sensitive_data_storage": true
                },
                "lead": {"phone_number": "+******4546", "name": "David"}
            })
        );
    }

    #[test]
    fn phone_numbers_sent_as_json_numbers_are_masked_too() {
        let mut payload = json!({"from": 1012345678, "to": "07012345678", "duration": 12345678});
        redact_payload(&mut payload);
        assert_eq!(
            payload,
            json!({"from": "******5678", "to": "*******5678", "duration": 12345678})
        );
        let mut record = CallRecord::new("synthflow", "c");
        record.lead = json!({"phone": 1012345678, "name": "Ada"})
            .as_object()
            .cloned();
        redact_record(&mut record);
        assert_eq!(
            Value::Object(record.lead.unwrap()),
            json!({"phone": "******5678", "name": "Ada"})
        );
    }

    #[test]
    fn the_flag_must_be_true() {
        assert!(!opts_out(
            &json!({"call": {"opt_out_sensitive_data_storage": false}})
        ));
        assert!(!opts_out(
            &json!({"call": {"opt_out_sensitive_data_storage": "true"}})
        ));
        assert!(opts_out(&json!([{"opt_out_sensitive_data_storage": true}])));
    }

    #[test]
    fn the_raw_scan_agrees_with_the_parsed_one() {
        for payload in [
            json!({"call": {"opt_out_sensitive_data_storage": true}}),
            json!({"call": {"opt_out_sensitive_data_storage": false}}),
            json!({"a": [1, "x", null, {"b": [{"opt_out_sensitive_data_storage": true}]}]}),
            json!({"opt_out_sensitive_data_storage": {"opt_out_sensitive_data_storage": true}}),
            json!({"opt_out_sensitive_data_storage": [true]}),
            json!([{"opt_out_sensitive_data_storage": true}]),
            json!("opt_out_sensitive_data_storage"),
            json!(1.5),
        ] {
            let text = serde_json::to_vec(&payload).unwrap();
            assert_eq!(opts_out_json(&text), Some(opts_out(&payload)), "{payload}");
        }
        assert_eq!(opts_out_json(b"{\"call\": "), None);
        assert_eq!(opts_out_json(b"not json"), None);
    }

    #[test]
    fn a_flag_repeated_in_one_object_counts_every_time() {
        // A parsed Value keeps the last occurrence (false) and would not see the opt-out.
        let body = br#"{"opt_out_sensitive_data_storage":true,"from":"01012345678","opt_out_sensitive_data_storage":false}"#;
        let parsed: Value = serde_json::from_slice(body).unwrap();
        assert!(!opts_out(&parsed));
        assert_eq!(opts_out_json(body), Some(true));
        // Escaped key spellings are the same key.
        assert_eq!(
            opts_out_json(br#"{"opt_out_sensitive_data_\u0073torage":true}"#),
            Some(true)
        );
    }

    #[test]
    fn an_opted_out_json_body_is_redacted_before_quarantine() {
        // GIVEN a body that no provider parses (the event is a number) but that opts out
        let body = br#"{"event":5,"call":{"call_id":"c","from_number":"01012345678","transcript":"hello","opt_out_sensitive_data_storage":true}}"#;
        // WHEN the redact policy decides what to keep
        let kept = quarantine_body(body, "The field `event` has the wrong type or value.");
        // THEN the number is masked and the transcript gone
        let kept: Value = serde_json::from_slice(&kept).unwrap();
        assert_eq!(kept["call"]["from_number"], "*******5678");
        assert!(kept["call"].get("transcript").is_none());
        assert_eq!(kept["event"], 5, "the rest is kept for diagnosis");
    }

    #[test]
    fn a_json_body_that_does_not_opt_out_is_quarantined_verbatim() {
        let body = br#"{"event":5,"call":{"from_number":"01012345678"}}"#;
        assert!(matches!(quarantine_body(body, "why."), Cow::Borrowed(b) if b == body));
    }

    #[test]
    fn a_body_that_is_not_json_keeps_only_its_top_level_keys_and_the_reason() {
        // Truncated after the flag: it cannot be parsed, so it cannot be redacted either.
        let body = br#"{"event":"call_ended","call":{"opt_out_sensitive_data_storage":true,"from_number":"01012345678","transcript":"my card is 4111"#;
        let kept = quarantine_body(
            body,
            "The request body is not valid JSON (line 1, column 99).",
        );
        let text = String::from_utf8(kept.to_vec()).unwrap();
        assert!(
            !text.contains("5678") && !text.contains("4111") && !text.contains("card"),
            "{text}"
        );
        let kept: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(kept["top_level_keys"], json!(["event", "call"]));
        assert_eq!(kept["size_bytes"], body.len());
        assert_eq!(
            kept["reason"],
            "The request body is not valid JSON (line 1, column 99)."
        );
        // Not JSON at all: no keys, still no bytes.
        let kept: Value =
            serde_json::from_slice(&quarantine_body(b"call 01012345678 ended", "why.")).unwrap();
        assert_eq!(kept["top_level_keys"], json!([]));
        assert!(!kept.to_string().contains("5678"));
        // Keys that look like phone numbers are masked; hostile key counts are bounded.
        let mut many = String::from("{\"01012345678\":1");
        for i in 0..1000 {
            many.push_str(&format!(",\"k{i}\":1"));
        }
        let kept: Value =
            serde_json::from_slice(&quarantine_body(many.as_bytes(), "why.")).unwrap();
        let keys = kept["top_level_keys"].as_array().unwrap();
        assert_eq!(keys.len(), SUMMARY_KEYS);
        assert_eq!(keys[0], "*******5678");
    }
}
