//! DynamoDB-safe canonical events: what JSON allows and DynamoDB refuses is normalized (or the
//! event refused) before anything is stored, so no provider value can become a write that fails
//! on every retry of the merge.
//!
//! What DynamoDB refuses, checked against DynamoDB Local 3.3.0 with `PutItem` (the calls table's
//! items are written by `serde_dynamo`: JSON objects become `M`, arrays `L`, numbers `N`):
//!
//! - **Nesting deeper than 32 levels**, the item itself counting as level 1: a top-level
//!   attribute holding 31 nested `M`/`L` (itself included) is stored, 32 are refused ("Nesting
//!   Levels have exceeded supported limits"), whether the innermost container is empty or not.
//!   Scalars do not count. `metadata`, `dynamic_variables`, `lead` and a message's `extra` are
//!   top-level attributes (level 2); `analysis.data[i].value` sits at level 5 (analysis `M`,
//!   data `L`, item `M`, value).
//! - **Numbers out of range**: a magnitude above 9.9999999999999999999999999999999999999E+125
//!   ("Number overflow": `1e300`, `1E+126`) or non-zero below 1E-130 ("Number underflow": `1e-131`,
//!   `5e-324`), or more than 38 significant digits. serde_json numbers here are `i64`, `u64` or
//!   `f64`: integers always fit (at most 20 digits), an `f64` has at most 17 significant digits, so
//!   only its magnitude is checked. It is judged as serde_json read it, which is what
//!   `serde_dynamo` would write: serde_json's default float parser can be one unit off in the last
//!   digit at extreme exponents (`1e-130` in a body reads as 9.999999999999999e-131, and is
//!   refused).
//! - **Empty map keys**, at any depth ("Empty attribute name").
//! - **Key values too long**: a partition key over 2048 bytes, a sort key over 1024 bytes, and a
//!   secondary index key over 2048 bytes ("Size limit exceeded"); an index key may not be an empty
//!   string either. Record keys are `<provider>#<call id>`, and a record's `from_number`,
//!   `to_number` and agent id are the keys of the calls table's indexes.
//!
//! How each is handled:
//!
//! - A provider value that would be refused is kept as a string holding its own JSON text, at the
//!   place it would be refused: a subtree that would overflow the nesting limit becomes its JSON
//!   text at the first level that does not fit; `1e300` becomes `"1e300"`; a map with an empty key
//!   becomes its JSON text. The top-level attribute maps themselves cannot become text (their type
//!   is a map), so there an empty key is written as its JSON text, `""` (two quote characters).
//!   Nothing is dropped, and the raw body in the events table keeps every value as sent.
//! - A cost whose amount is out of range is left out of the event: `cost.amount` is a number in
//!   the record's contract, so it can be neither a string nor a different number. Such an amount
//!   is no real cost (a provider bug); leaving it out means "this event says nothing about the
//!   cost", so an earlier valid cost stays, and the raw body keeps the provider's figure.
//! - An event whose call id (or message id) is blank or longer than [`MAX_ID_BYTES`], or whose
//!   caller or callee number or agent id is longer than [`MAX_INDEXED_BYTES`], is refused as
//!   unusable (422, quarantined): a key cannot be shortened without merging unrelated calls.
//!   A message's blank number is left out (it says nothing, and an index key cannot be empty).
//! - The provider's event name is an attribute of every stored event, next to up to 350 KiB of
//!   body in the same 400 KB item: it is cut to [`MAX_PROVIDER_EVENT_BYTES`].

use crate::error::{Error, Result};
use crate::event::{CallPatch, CanonicalEvent, EventData, EventType, Message};
use serde_json::{Map, Number, Value};

/// DynamoDB's nesting limit, the item itself counting as level 1.
pub const MAX_LEVELS: usize = 32;
/// The level of a top-level attribute (`metadata`, `lead`, …) of an item.
pub const ATTRIBUTE_LEVEL: usize = 2;
/// The level of `analysis.data[i].value`: analysis (2) → data (3) → item (4) → value.
pub const ANALYSIS_VALUE_LEVEL: usize = 5;
/// The longest call or message id: half a partition key (2048 bytes), room for the record key's
/// prefix, and the sort-key limit should an id ever be used in one.
pub const MAX_ID_BYTES: usize = 1024;
/// The longest phone number or agent id: they are index keys (at most 2048 bytes).
pub const MAX_INDEXED_BYTES: usize = 1024;
/// The longest provider event name kept on a stored event.
pub const MAX_PROVIDER_EVENT_BYTES: usize = 256;

/// The smallest non-zero magnitude DynamoDB stores (1E-130).
const SMALLEST: f64 = 1e-130;
/// The smallest magnitude DynamoDB refuses as too large: every `f64` below it prints as at most
/// 9.999999999999999E+125.
const TOO_LARGE: f64 = 1e126;

/// Makes one canonical event storable, or refuses it as unusable.
pub fn storable_event(event: &mut CanonicalEvent) -> Result<()> {
    let id = if event.event_type == EventType::MessageReceived {
        "message id"
    } else {
        "call id"
    };
    check_id(&event.call_id, id)?;
    cap(&mut event.provider_event, MAX_PROVIDER_EVENT_BYTES);
    match &mut event.data {
        EventData::Call(patch) => storable_patch(patch),
        EventData::Message(message) => {
            check_id(&message.message_id, "message id")?;
            storable_message(message)
        }
        EventData::Opaque => Ok(()),
    }
}

/// Normalizes a JSON value found at nesting `level` of an item (see the module doc).
pub fn storable_value(value: &mut Value, level: usize) {
    let refused = match &*value {
        Value::Number(n) => !number_fits(n),
        Value::Array(_) => level > MAX_LEVELS,
        Value::Object(map) => level > MAX_LEVELS || map.contains_key(""),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    };
    if refused {
        *value = Value::String(json_text(value));
        return;
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| storable_value(item, level + 1)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| storable_value(item, level + 1)),
        _ => {}
    }
}

/// The JSON text of a refused value. A number is written in exponent form as Rust's shortest
/// round-trip digits (`1e300`, `-1.5e-200`): only numbers too large or too small are refused, and
/// that is how they are usually written.
fn json_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |x| format!("{x:e}")),
        other => other.to_string(),
    }
}

/// Normalizes a map stored as a top-level attribute of an item.
pub fn storable_attribute(map: &mut Map<String, Value>) {
    if let Some(value) = map.remove("") {
        // The map cannot become text in its field; the empty key is written as its JSON text
        // instead, quoted again in the unlikely case the payload also has that key.
        let mut key = Value::String(String::new()).to_string();
        while map.contains_key(&key) {
            key = Value::String(key).to_string();
        }
        map.insert(key, value);
    }
    map.values_mut()
        .for_each(|value| storable_value(value, ATTRIBUTE_LEVEL + 1));
}

/// Whether DynamoDB stores this number as `N`.
pub fn number_fits(n: &Number) -> bool {
    if n.is_i64() || n.is_u64() {
        return true;
    }
    n.as_f64().is_some_and(|x| {
        let magnitude = x.abs();
        magnitude == 0.0 || (SMALLEST..TOO_LARGE).contains(&magnitude)
    })
}

fn storable_patch(patch: &mut CallPatch) -> Result<()> {
    check_indexed(
        patch.from_number.as_deref(),
        "caller number (`from_number`)",
    )?;
    check_indexed(patch.to_number.as_deref(), "callee number (`to_number`)")?;
    check_indexed(
        patch.agent.as_ref().and_then(|a| a.id.as_deref()),
        "agent id",
    )?;
    for map in [
        &mut patch.metadata,
        &mut patch.dynamic_variables,
        &mut patch.lead,
    ]
    .into_iter()
    .flatten()
    {
        storable_attribute(map);
    }
    if let Some(analysis) = &mut patch.analysis {
        for item in &mut analysis.data {
            storable_value(&mut item.value, ANALYSIS_VALUE_LEVEL);
        }
    }
    if patch.cost.as_ref().is_some_and(|c| !number_fits(&c.amount)) {
        patch.cost = None;
    }
    Ok(())
}

fn storable_message(message: &mut Message) -> Result<()> {
    for (number, name) in [
        (&mut message.from_number, "sender number (`from`)"),
        (&mut message.to_number, "recipient number (`to`)"),
    ] {
        if number.as_deref().is_some_and(|n| n.trim().is_empty()) {
            *number = None;
        }
        check_indexed(number.as_deref(), name)?;
    }
    storable_attribute(&mut message.extra);
    Ok(())
}

fn check_id(id: &str, what: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::unusable(format_args!("The {what} is empty.")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::unusable(format_args!(
            "The {what} is {} bytes long, more than the {MAX_ID_BYTES} bytes a record key can hold.",
            id.len()
        )));
    }
    Ok(())
}

fn check_indexed(value: Option<&str>, what: &str) -> Result<()> {
    match value {
        Some(v) if v.len() > MAX_INDEXED_BYTES => Err(Error::unusable(format_args!(
            "The {what} is {} bytes long, more than the {MAX_INDEXED_BYTES} bytes an index key can hold.",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
fn cap(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Agent, Analysis, AnalysisItem, Cost, DeliveryContext};
    use crate::provider;
    use serde_json::json;

    /// `{"a": {"a": … leaf}}` with `depth` maps.
    fn nested(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |inner, _| json!({ "a": inner }))
    }

    /// The number of maps above the first non-map value, and that value.
    fn descend(mut value: &Value) -> (usize, &Value) {
        let mut maps = 0;
        while let Some(inner) = value.get("a") {
            maps += 1;
            value = inner;
        }
        (maps, value)
    }

    fn call_event(patch: CallPatch) -> CanonicalEvent {
        CanonicalEvent {
            provider: "vox",
            event_type: EventType::CallEnded,
            provider_event: "call_ended".into(),
            call_id: "c1".into(),
            dedupe_key: "k".into(),
            occurred_at: None,
            received_at: 0,
            data: EventData::Call(Box::new(patch)),
        }
    }

    #[test]
    fn a_subtree_too_deep_becomes_its_json_text_at_the_first_level_that_does_not_fit() {
        // GIVEN metadata whose entry nests 35 maps (levels 3 to 37 of the item)
        let deep = nested(35, json!("leaf"));
        let mut map = Map::new();
        map.insert("deep".into(), deep.clone());
        // WHEN it is made storable
        storable_attribute(&mut map);
        // THEN levels 3..=32 stay maps (30 of them), and level 33 holds the rest as JSON text
        let (maps, rest) = descend(&map["deep"]);
        assert_eq!(maps, 30);
        let text = rest.as_str().expect("the overflowing subtree is text");
        let (original_maps, original_rest) = descend(&deep);
        assert_eq!(original_maps, 35);
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap(),
            nested(5, original_rest.clone()),
            "the text is the subtree as sent"
        );
    }

    #[test]
    fn a_subtree_at_exactly_the_limit_is_left_alone() {
        // 29 maps and an empty one inside: 30 containers, levels 3 to 32 under an attribute.
        let fits = nested(29, json!({}));
        let mut value = fits.clone();
        storable_value(&mut value, ATTRIBUTE_LEVEL + 1);
        assert_eq!(value, fits);
        // One level lower, the empty map is level 33: empty containers count too.
        let mut value = fits;
        storable_value(&mut value, ATTRIBUTE_LEVEL + 2);
        assert_eq!(descend(&value), (29, &json!("{}")));
        let mut list = nested(29, json!([[1]]));
        storable_value(&mut list, ATTRIBUTE_LEVEL + 1);
        assert_eq!(
            descend(&list),
            (29, &json!(["[1]"])),
            "lists count as levels"
        );
    }

    #[test]
    fn numbers_out_of_dynamodb_range_become_their_json_text() {
        let mut value: Value = serde_json::from_str(
            "[1e300, -1e300, 1e126, 5e-324, 1e125, 0.0, -0.0, 18446744073709551615, -9223372036854775808, 0.1]",
        )
        .unwrap();
        storable_value(&mut value, ATTRIBUTE_LEVEL);
        let expected: Value = serde_json::from_str(
            r#"["1e300", "-1e300", "1e126", "5e-324", 1e125, 0.0, -0.0, 18446744073709551615, -9223372036854775808, 0.1]"#,
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn the_ends_of_the_number_range_are_dynamodb_s() {
        let below = |x: f64| f64::from_bits(x.to_bits() - 1);
        let fits = |x: f64| number_fits(&Number::from_f64(x).unwrap());
        assert!(fits(1e-130) && fits(-1e-130) && fits(below(1e126)) && fits(-below(1e126)));
        assert!(!fits(below(1e-130)) && !fits(1e126) && !fits(-1e126));
        // serde_dynamo writes an f64 in full decimal: the largest that fits has 126 digits
        // (below 1E+126), and 17 significant ones at most (under DynamoDB's 38).
        let text = below(1e126).to_string();
        assert_eq!(text.len(), 126);
        assert!(text.trim_end_matches('0').len() <= 17, "{text}");
    }

    #[test]
    fn a_nested_map_with_an_empty_key_becomes_its_json_text() {
        let mut map = Map::new();
        map.insert(
            "outer".into(),
            json!({"inner": {"": 1, "b": [1e300]}, "ok": {"c": 2}}),
        );
        storable_attribute(&mut map);
        let inner = json!({"": 1, "b": [1e300]}).to_string();
        assert_eq!(
            Value::Object(map),
            json!({"outer": {"inner": inner, "ok": {"c": 2}}})
        );
    }

    #[test]
    fn an_empty_key_of_an_attribute_map_is_written_as_its_json_text() {
        let mut map = Map::new();
        map.insert(String::new(), json!(1e300));
        map.insert("kept".into(), json!("v"));
        storable_attribute(&mut map);
        assert_eq!(Value::Object(map), json!({"\"\"": "1e300", "kept": "v"}));
        // The payload already has a key `""`: the empty one is quoted once more.
        let mut map = Map::new();
        map.insert(String::new(), json!(1));
        map.insert("\"\"".into(), json!(2));
        storable_attribute(&mut map);
        assert_eq!(Value::Object(map), json!({"\"\"": 2, "\"\\\"\\\"\"": 1}));
    }

    #[test]
    fn every_opaque_value_of_a_call_event_is_normalized() {
        let object = |value: Value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let mut event = call_event(CallPatch {
            metadata: object(json!({"m": 1e300})),
            dynamic_variables: object(json!({"d": 1e300})),
            lead: object(json!({"l": {"": 1}})),
            analysis: Some(Analysis {
                data: vec![AnalysisItem {
                    name: "deep".into(),
                    kind: "object".into(),
                    value: nested(29, json!(1)),
                }],
                ..Analysis::default()
            }),
            ..CallPatch::default()
        });
        storable_event(&mut event).unwrap();
        let EventData::Call(patch) = &event.data else {
            panic!("call data expected")
        };
        assert_eq!(patch.metadata.as_ref().unwrap()["m"], "1e300");
        assert_eq!(patch.dynamic_variables.as_ref().unwrap()["d"], "1e300");
        assert_eq!(patch.lead.as_ref().unwrap()["l"], "{\"\":1}");
        // The value is level 5: maps on levels 5 to 32 (28), then text.
        let (maps, rest) = descend(&patch.analysis.as_ref().unwrap().data[0].value);
        assert_eq!((maps, rest), (28, &Value::String("{\"a\":1}".into())));
    }

    #[test]
    fn a_message_extra_map_is_normalized_and_blank_numbers_left_out() {
        let mut event = call_event(CallPatch::default());
        event.event_type = EventType::MessageReceived;
        let mut extra = Map::new();
        extra.insert("price".into(), json!(1e-200));
        extra.insert(String::new(), json!("x"));
        event.data = EventData::Message(Box::new(Message {
            provider: "clawops".into(),
            message_id: "c1".into(),
            from_number: Some("  ".into()),
            to_number: Some("07012345678".into()),
            extra,
            ..Message::default()
        }));
        storable_event(&mut event).unwrap();
        let EventData::Message(message) = &event.data else {
            panic!("message expected")
        };
        assert_eq!(message.from_number, None);
        assert_eq!(message.to_number.as_deref(), Some("07012345678"));
        assert_eq!(
            Value::Object(message.extra.clone()),
            json!({"price": "1e-200", "\"\"": "x"})
        );
    }

    #[test]
    fn a_cost_out_of_range_is_left_out_and_one_in_range_kept() {
        let cost = |amount: f64| {
            Some(Cost {
                amount: Number::from_f64(amount).unwrap(),
                unit: "credits".into(),
            })
        };
        for (amount, kept) in [(1e300, false), (1e-131, false), (45.5, true), (0.0, true)] {
            let mut event = call_event(CallPatch {
                cost: cost(amount),
                ..CallPatch::default()
            });
            storable_event(&mut event).unwrap();
            let EventData::Call(patch) = &event.data else {
                panic!()
            };
            assert_eq!(patch.cost.is_some(), kept, "{amount}");
        }
    }

    #[test]
    fn ids_too_long_for_a_key_are_refused_and_the_message_names_no_value() {
        let mut event = call_event(CallPatch::default());
        event.call_id = "x".repeat(MAX_ID_BYTES);
        storable_event(&mut event).unwrap();
        event.call_id.push('y');
        let error = storable_event(&mut event).unwrap_err();
        assert_eq!(error.status(), 422);
        assert_eq!(
            error.to_string(),
            "The call id is 1025 bytes long, more than the 1024 bytes a record key can hold."
        );
        let mut event = call_event(CallPatch {
            from_number: Some("1".repeat(MAX_INDEXED_BYTES + 1)),
            ..CallPatch::default()
        });
        let error = storable_event(&mut event).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("The caller number (`from_number`) is 1025 bytes"),
            "{error}"
        );
        let mut event = call_event(CallPatch {
            agent: Some(Agent {
                id: Some("a".repeat(2000)),
                version: None,
            }),
            ..CallPatch::default()
        });
        assert_eq!(storable_event(&mut event).unwrap_err().status(), 422);
    }

    #[test]
    fn a_long_provider_event_name_is_cut_on_a_character_boundary() {
        let mut event = call_event(CallPatch::default());
        event.provider_event = "é".repeat(1000);
        storable_event(&mut event).unwrap();
        assert!(event.provider_event.len() <= MAX_PROVIDER_EVENT_BYTES);
        assert!(event.provider_event.ends_with("é…"));
        let mut event = call_event(CallPatch::default());
        event.provider_event = "x".repeat(MAX_PROVIDER_EVENT_BYTES);
        storable_event(&mut event).unwrap();
        assert_eq!(
            event.provider_event.len(),
            MAX_PROVIDER_EVENT_BYTES,
            "untouched"
        );
    }

    fn parse(provider: &str, body: &str) -> Result<Vec<CanonicalEvent>> {
        let ctx = DeliveryContext::default();
        provider::lookup(provider)
            .unwrap()
            .parse(body.as_bytes(), &ctx)
    }

    #[test]
    fn blank_call_ids_are_refused_by_every_provider_or_filed_under_unknown() {
        for (provider, body) in [
            (
                "vox",
                r#"{"event":"call_started","call":{"call_id":"   "}}"#,
            ),
            ("vox", r#"{"event":"mid_call","mid_call":{"call_id":""}}"#),
            ("clawops", r#"{"event":"call.completed","call_id":" "}"#),
            (
                "clawops",
                r#"{"event":"message.received","message_id":"\t"}"#,
            ),
            ("synthflow", r#"{"call":{"call_id":"  "}}"#),
        ] {
            let error = parse(provider, body).unwrap_err();
            assert_eq!(error.status(), 422, "{provider}: {body}");
        }
        for (provider, body) in [
            ("vox", r#"{"event":"call_moved","call":{"call_id":"  "}}"#),
            ("clawops", r#"{"event":"call.moved","call_id":"  "}"#),
        ] {
            let events = parse(provider, body).unwrap();
            assert_eq!(events[0].call_id, "unknown", "{provider}: {body}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        // The merge functions re-parse stored bodies: the second pass must agree with the first.
        let body = format!(
            r#"{{"event":"call_ended","webhook_version":"v2","call":{{"call_id":"c","metadata":{{"":{{"":1}},"\"\"":2,"d":{deep},"n":[1e300]}},"call_cost":{{"total_cost":1e300}}}}}}"#,
            deep = nested(40, json!(1))
        );
        let events = parse("vox", &body).unwrap();
        for event in &events {
            let mut again = event.clone();
            storable_event(&mut again).unwrap();
            assert_eq!(&again, event);
        }
    }

    #[test]
    fn the_provider_parse_entry_point_returns_storable_events() {
        // The one entry point ingest and the merge functions share.
        let long = "c".repeat(2000);
        let body = format!(r#"{{"event":"call_started","call":{{"call_id":"{long}"}}}}"#);
        assert_eq!(parse("vox", &body).unwrap_err().status(), 422);
        let body = format!(r#"{{"event":"message.received","message_id":"{long}"}}"#);
        let error = parse("clawops", &body).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("The message id is 2000 bytes"),
            "{error}"
        );
        let events = parse(
            "vox",
            r#"{"event":"call_started","call":{"call_id":"c","metadata":{"n":1e300,"":{"x":1}},"dynamic_variables":{"d":-1e300}}}"#,
        )
        .unwrap();
        let EventData::Call(patch) = &events[0].data else {
            panic!()
        };
        assert_eq!(
            Value::Object(patch.metadata.clone().unwrap()),
            json!({"n": "1e300", "\"\"": {"x": 1}})
        );
        assert_eq!(patch.dynamic_variables.as_ref().unwrap()["d"], "-1e300");
        let events = parse(
            "synthflow",
            r#"{"call":{"call_id":"c"},"lead":{"n":1e-300},"executed_actions":{"a":{"return_value":{"v":1e300}}}}"#,
        )
        .unwrap();
        let EventData::Call(ended) = &events[0].data else {
            panic!()
        };
        assert_eq!(ended.lead.as_ref().unwrap()["n"], "1e-300");
        let EventData::Call(analyzed) = &events[1].data else {
            panic!()
        };
        assert_eq!(analyzed.analysis.as_ref().unwrap().data[0].value, "1e300");
    }
}
