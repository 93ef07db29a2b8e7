//! The opt-out policy: when a payload says `opt_out_sensitive_data_storage: true` and the stack is
//! configured to redact, transcripts and recording URLs are removed and phone numbers masked (all
//! but the last four digits) before anything is stored — in the stored raw body itself, so a
//! replay can never bring them back.
//!
//! A payload that does not carry the flag (a Vox `mid_call`) cannot be redacted at the door;
//! [`redact_record`] removes what such events left in a call record once the flag is known.

use crate::record::CallRecord;
use serde_json::Value;

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
                match value {
                    Value::String(s) if NUMBERS.contains(&key.as_str()) => *s = mask(s),
                    other => redact_payload(other),
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
            if let Some(Value::String(s)) = lead.get_mut(key) {
                *s = mask(s);
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
    fn the_flag_must_be_true() {
        assert!(!opts_out(
            &json!({"call": {"opt_out_sensitive_data_storage": false}})
        ));
        assert!(!opts_out(
            &json!({"call": {"opt_out_sensitive_data_storage": "true"}})
        ));
        assert!(opts_out(&json!([{"opt_out_sensitive_data_storage": true}])));
    }
}
