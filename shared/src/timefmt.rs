//! Timestamps as providers send them, turned into unix milliseconds.
//!
//! Vox sends integer milliseconds, Synthflow ISO 8601 with an offset, ClawOps ISO 8601 or epoch
//! seconds or milliseconds. Parsing never panics and never overflows: out-of-range values are
//! `None`, which the caller reports as an unusable field.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

/// Epoch values below this are seconds, at or above it milliseconds (1e11 s is the year 5138;
/// 1e11 ms is 1973).
const SECONDS_MS_BOUNDARY: i64 = 100_000_000_000;

/// The latest instant callhook accepts (year 9999), in ms.
const MAX_MS: i64 = 253_402_300_799_999;

/// Unix ms from an epoch number in seconds or milliseconds.
pub fn epoch_to_ms(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value < SECONDS_MS_BOUNDARY as f64 {
        value * 1000.0
    } else {
        value
    };
    let ms = ms.round();
    (ms <= MAX_MS as f64).then_some(ms as i64)
}

/// Unix ms from ISO 8601 / RFC 3339 text; a date-time without offset is taken as UTC.
pub fn iso8601_to_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .or_else(|_| {
            time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(|t| t.assume_utc())
        })
        .ok()?;
    let ms = parsed.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms)
        .ok()
        .filter(|ms| (0..=MAX_MS).contains(ms))
}

/// A value that is neither a number, a numeric string nor ISO 8601 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotATimestamp;

/// Unix ms from a JSON value: a number (epoch s or ms), a numeric string, or ISO 8601 text.
/// `Ok(None)` for null; `Err` for anything else.
pub fn value_to_ms(value: &Value) -> Result<Option<i64>, NotATimestamp> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .and_then(epoch_to_ms)
            .map(Some)
            .ok_or(NotATimestamp),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => epoch_to_ms(n).map(Some).ok_or(NotATimestamp),
            Err(_) => iso8601_to_ms(s).map(Some).ok_or(NotATimestamp),
        },
        _ => Err(NotATimestamp),
    }
}

/// Serde helper for integer-millisecond fields (Vox): accepts integers and integral floats within
/// range; rejects anything else as a wrong type.
pub fn de_millis<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<serde_json::Number>::deserialize(de)?;
    let Some(n) = value else { return Ok(None) };
    let ms = n
        .as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_MS as f64)
                .map(|f| f as i64)
        })
        .filter(|ms| (0..=MAX_MS).contains(ms));
    ms.map(Some)
        .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
}

/// Serde helper for any timestamp field: see [`value_to_ms`].
pub fn de_flexible<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(de)?;
    value_to_ms(&value).map_err(|_| serde::de::Error::custom("not a timestamp"))
}

/// Milliseconds from a duration in seconds (integer or fractional).
pub fn seconds_to_ms(seconds: f64) -> Option<i64> {
    (seconds.is_finite() && (0.0..=1e12).contains(&seconds))
        .then(|| (seconds * 1000.0).round() as i64)
}

/// Serde helper for a duration in seconds: a number or numeric string.
pub fn de_seconds_as_ms<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    let value = Value::deserialize(de)?;
    let seconds = match &value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    seconds
        .and_then(seconds_to_ms)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("not a duration"))
}

/// Unix ms as RFC 3339 (UTC, milliseconds): `2026-12-03T11:34:13.000Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iso8601_with_offset_fraction_and_zulu() {
        assert_eq!(
            iso8601_to_ms("2024-03-28T18:17:46.205134+01:00"),
            Some(1_711_646_266_205)
        );
        assert_eq!(
            iso8601_to_ms("2025-03-11T00:18:32Z"),
            Some(1_741_652_312_000)
        );
        assert_eq!(
            iso8601_to_ms("2025-03-11T00:18:32"),
            Some(1_741_652_312_000)
        );
        assert_eq!(iso8601_to_ms("yesterday"), None);
    }

    #[test]
    fn epoch_seconds_and_milliseconds_are_told_apart() {
        assert_eq!(epoch_to_ms(1_741_652_312.0), Some(1_741_652_312_000));
        assert_eq!(epoch_to_ms(1_741_652_312_146.0), Some(1_741_652_312_146));
        assert_eq!(epoch_to_ms(-1.0), None);
        assert_eq!(epoch_to_ms(1e30), None);
        assert_eq!(epoch_to_ms(f64::NAN), None);
    }

    #[test]
    fn json_values_to_ms() {
        assert_eq!(value_to_ms(&json!(null)), Ok(None));
        assert_eq!(
            value_to_ms(&json!("1741652312")),
            Ok(Some(1_741_652_312_000))
        );
        assert_eq!(
            value_to_ms(&json!("2025-03-11T00:18:32Z")),
            Ok(Some(1_741_652_312_000))
        );
        assert_eq!(value_to_ms(&json!(true)), Err(NotATimestamp));
        assert_eq!(value_to_ms(&json!("soon")), Err(NotATimestamp));
    }
}
