//! Twilio voice status callbacks (`StatusCallback`), sent as `application/x-www-form-urlencoded`.
//!
//! Only bodies with `CallbackSource=call-progress-events` are status callbacks; anything else
//! (a voice URL's TwiML request, a `<Dial action>` or ConversationRelay callback) is stored as
//! `unknown`. `CallStatus` names the canonical event: queued, initiated, ringing and in-progress
//! start the call, completed, busy, no-answer, failed and canceled end it. `CallSid` is the call
//! id. Callbacks arrive out of order and may be retried, so each is deduplicated on `CallSid` and
//! `SequenceNumber` (else `CallStatus`: one callback per status and call), never on the bytes,
//! which a retry may encode differently. Instants are RFC 2822 (`Timestamp`); `CallDuration` is
//! seconds (`Duration` is billed minutes and never used). Status callbacks carry no agent,
//! transcript, analysis or cost.
//!
//! Telnyx TeXML applications send the same callbacks: [`status_callback`] maps them too.

use super::{AuthDefaults, Provider, Source, outcome_of, required_id};
use crate::error::{Error, Result};
use crate::event::{CallPatch, CallStatus, CanonicalEvent, DeliveryContext, EventData, EventType};
use crate::timefmt::seconds_to_ms;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

#[derive(Debug, Clone, Copy, Default)]
pub struct Twilio;

const NAME: &str = "twilio";

/// The `CallbackSource` of status callbacks.
const CALL_PROGRESS: &str = "call-progress-events";

/// Fields kept in the record's metadata, under Twilio's own names. `Direction` keeps the
/// `outbound-api` / `outbound-dial` distinction the record's `direction` folds away.
const METADATA_FIELDS: [&str; 5] = [
    "ParentCallSid",
    "SipResponseCode",
    "AnsweredBy",
    "CallbackSource",
    "Direction",
];

impl Provider for Twilio {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        AuthDefaults {
            scheme: "twilio",
            header: "x-twilio-signature",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let form = Form(form_fields(body)?);
        status_callback(&src, &form, rfc2822_to_ms).map(|event| vec![event])
    }
}

/// The name/value pairs of a form body, in order, repeated names included: split on `&` (empty
/// pieces skipped), then at the first `=` (a piece without one is a name with an empty value),
/// `+` → space, then percent-decoded, as every form encoder and Twilio's signature (§1 of the
/// provider notes) expect.
///
/// Refused as malformed (400): an empty body, a JSON body, raw bytes a form encoder would have
/// escaped (spaces, control characters, anything non-ASCII), and names or values that are not
/// UTF-8 once decoded. `form_urlencoded` would silently replace such bytes with U+FFFD, which
/// could make two different bodies read (and verify) alike.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(Error::malformed(
                "The request body is empty; a form-urlencoded body is expected.",
            ));
        }
        Some(b'{' | b'[') => {
            return Err(Error::malformed(
                "The request body must be form-urlencoded, not JSON.",
            ));
        }
        Some(_) => {}
    }
    if body.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::malformed(
            "The request body is not form-urlencoded: it holds a space, a control character or \
             a non-ASCII byte that a form encoder escapes.",
        ));
    }
    // `&`, `=` and `+` are ASCII and can never be part of a multi-byte UTF-8 sequence, so the
    // decoded body is UTF-8 exactly when each decoded name and value is.
    if std::str::from_utf8(&percent_decode(body)).is_err() {
        return Err(Error::malformed(
            "A form field is not valid UTF-8 once percent-decoded.",
        ));
    }
    Ok(form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect())
}

/// Percent-decoding as `form_urlencoded` does it: `%` and two hex digits is a byte, any other
/// `%` stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                // Two hex digits: at most 0xFF.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A decoded form body.
#[derive(Debug)]
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    /// A field's value; `None` when absent or blank (Twilio sends `AnsweredBy=` and
    /// `CallDuration=` empty). A name given twice with different values is unusable: which one
    /// is meant cannot be known.
    pub fn get(&self, name: &str) -> Result<Option<&str>> {
        let mut found: Option<&str> = None;
        for (n, value) in &self.0 {
            if n == name {
                match found {
                    Some(first) if first != value => {
                        return Err(Error::unusable(format_args!(
                            "The field `{name}` appears more than once with different values."
                        )));
                    }
                    _ => found = Some(value),
                }
            }
        }
        Ok(found.map(str::trim).filter(|v| !v.is_empty()))
    }

    /// Like [`Form::get`], for a field that only names something: a repeated or odd value is no
    /// reason to refuse a body callhook does not interpret.
    fn lenient(&self, name: &str) -> Option<&str> {
        self.get(name).ok().flatten()
    }
}

/// Maps one status callback (Twilio's, or a Telnyx TeXML application's) to its canonical event.
/// `instant` reads `Timestamp`.
pub(crate) fn status_callback(
    src: &Source<'_>,
    form: &Form,
    instant: fn(&str) -> Option<i64>,
) -> Result<CanonicalEvent> {
    let progress = form.lenient("CallbackSource") == Some(CALL_PROGRESS);
    let call_status = if progress {
        form.get("CallStatus")?
    } else {
        form.lenient("CallStatus")
    };
    let Some((event_type, status_now)) = call_status.and_then(status_of).filter(|_| progress)
    else {
        // Not a status callback: kept, under whatever call it names.
        let name = form
            .lenient("StatusCallbackEvent")
            .or(call_status)
            .or(form.lenient("CallbackSource"))
            .unwrap_or("unknown");
        let call_id = form.lenient("CallSid").unwrap_or("unknown");
        let at = form.lenient("Timestamp").and_then(instant);
        return Ok(src.event(EventType::Unknown, name, call_id, at, EventData::Opaque));
    };
    let call_status = call_status.unwrap_or_default();

    let call_id = required_id(form.get("CallSid")?.map(str::to_owned), "CallSid")?;
    let at = match form.get("Timestamp")? {
        None => None,
        Some(text) => Some(instant(text).ok_or_else(|| wrong("Timestamp"))?),
    };
    let sequence = match form.get("SequenceNumber")? {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| wrong("SequenceNumber"))?),
    };
    let duration_ms = match form.get("CallDuration")? {
        None => None,
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .and_then(seconds_to_ms)
                .ok_or_else(|| wrong("CallDuration"))?,
        ),
    };

    let mut metadata = Map::new();
    for field in METADATA_FIELDS {
        if let Some(value) = form.get(field)? {
            metadata.insert(field.to_owned(), Value::String(value.to_owned()));
        }
    }
    let mut patch = CallPatch {
        direction: form.get("Direction")?.and_then(direction),
        from_number: form.get("From")?.map(str::to_owned),
        to_number: form.get("To")?.map(str::to_owned),
        status: Some(status_now),
        provider_status: Some(call_status.to_owned()),
        recording_url: form.get("RecordingUrl")?.map(str::to_owned),
        metadata: (!metadata.is_empty()).then_some(metadata),
        ..CallPatch::default()
    };
    match status_now {
        CallStatus::InProgress => patch.started_at = at,
        CallStatus::Ended => {
            let answered = call_status.eq_ignore_ascii_case("completed");
            // A call that was never connected talked for no time, whether or not Twilio says
            // so: it is what makes an unanswered inbound call `missed` in the record.
            let duration_ms = duration_ms.or((!answered).then_some(0));
            patch.ended_at = at;
            patch.duration_ms = duration_ms;
            patch.started_at = at.zip(duration_ms).and_then(|(end, d)| end.checked_sub(d));
            patch.end_reason = Some(call_status.to_owned());
            patch.outcome = Some(if answered && duration_ms == Some(0) {
                "no_answer".to_owned()
            } else {
                outcome_of(call_status)
            });
        }
        _ => {}
    }

    let status_key = call_status.to_ascii_lowercase();
    let identity = match sequence {
        Some(n) => format!("{call_id}#sequence#{n}"),
        None => format!("{call_id}#status#{status_key}"),
    };
    Ok(src.event_identified(
        &identity,
        event_type,
        call_status,
        &call_id,
        at,
        EventData::Call(Box::new(patch)),
    ))
}

/// The canonical event and status of a `CallStatus`. Twilio's own word for the `initiated`
/// event is not documented: both `queued` and `initiated` are read; `answered` is the event's
/// name, in case a sender uses it for `in-progress`.
fn status_of(call_status: &str) -> Option<(EventType, CallStatus)> {
    Some(match call_status.to_ascii_lowercase().as_str() {
        "queued" => (EventType::CallStarted, CallStatus::Queued),
        "initiated" => (EventType::CallStarted, CallStatus::Initiated),
        "ringing" => (EventType::CallStarted, CallStatus::Ringing),
        "in-progress" | "answered" => (EventType::CallStarted, CallStatus::InProgress),
        "completed" | "busy" | "no-answer" | "failed" | "canceled" => {
            (EventType::CallEnded, CallStatus::Ended)
        }
        _ => return None,
    })
}

/// `inbound`, or `outbound` for `outbound-api` and `outbound-dial`; another value is unknown
/// (the raw `Direction` stays in the metadata).
fn direction(raw: &str) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    if lower == "inbound" {
        Some("inbound".to_owned())
    } else if lower == "outbound" || lower.starts_with("outbound-") {
        Some("outbound".to_owned())
    } else {
        None
    }
}

/// Unix ms from an RFC 2822 date-time such as `Sun, 25 Mar 2018 09:53:19 +0000`; `None` for
/// anything else, or an instant before 1970.
///
/// The grammar is the RFC's (`time`'s parser: optional day name, which must be the date's, 1–2
/// digit day, 4 or 2 digit year, optional seconds, numeric or named zone). The one leniency is in the names: day and
/// month names are read case-insensitively and may be written out or abbreviated to any prefix
/// of three letters or more (`Thurs, 20 July 1989` is in a published Twilio capture).
pub(crate) fn rfc2822_to_ms(text: &str) -> Option<i64> {
    let normalized = normalize_names(text.trim());
    let parsed = OffsetDateTime::parse(&normalized, &Rfc2822).ok()?;
    // The RFC requires a day name to be the date's; `time` does not check it.
    if let Some((day, _)) = normalized.split_once(',') {
        if !parsed.weekday().to_string().starts_with(day.trim()) {
            return None;
        }
    }
    let ms = parsed.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).ok().filter(|ms| *ms >= 0)
}

/// Rewrites each run of letters that names a day or a month into the RFC's three-letter form;
/// leaves every other character as it is.
fn normalize_names(text: &str) -> String {
    const NAMES: [(&str, &str); 19] = [
        ("monday", "Mon"),
        ("tuesday", "Tue"),
        ("wednesday", "Wed"),
        ("thursday", "Thu"),
        ("friday", "Fri"),
        ("saturday", "Sat"),
        ("sunday", "Sun"),
        ("january", "Jan"),
        ("february", "Feb"),
        ("march", "Mar"),
        ("april", "Apr"),
        ("may", "May"),
        ("june", "Jun"),
        ("july", "Jul"),
        ("august", "Aug"),
        ("september", "Sep"),
        ("october", "Oct"),
        ("november", "Nov"),
        ("december", "Dec"),
    ];
    let canonical = |word: &str| {
        let lower = word.to_ascii_lowercase();
        NAMES
            .iter()
            .find(|(full, _)| lower.len() >= 3 && full.starts_with(&lower))
            .map(|(_, short)| *short)
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        out.push_str(&rest[..start]);
        let word_and_rest = &rest[start..];
        let len = word_and_rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(word_and_rest.len());
        let (word, after) = word_and_rest.split_at(len);
        out.push_str(canonical(word).unwrap_or(word));
        rest = after;
    }
    out.push_str(rest);
    out
}

fn wrong(field: &str) -> Error {
    Error::unusable(format_args!(
        "The field `{field}` has the wrong type or value."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use proptest::prelude::*;

    const OUTBOUND: &str = "CA5810a815ebe62076493274ecba977c76";
    const INBOUND: &str = "CA5001d77688b99e96474b49166da731d4";
    const AGENT_NUMBER: &str = "+14155550188";
    const LEAD_NUMBER: &str = "+14155550134";

    fn fixture(name: &str) -> &'static [u8] {
        match name {
            "initiated" => include_bytes!("../../../tests/fixtures/twilio/initiated.form"),
            "ringing" => include_bytes!("../../../tests/fixtures/twilio/ringing.form"),
            "in_progress" => include_bytes!("../../../tests/fixtures/twilio/in_progress.form"),
            "completed" => include_bytes!("../../../tests/fixtures/twilio/completed.form"),
            "no_answer_inbound" => {
                include_bytes!("../../../tests/fixtures/twilio/no_answer_inbound.form")
            }
            other => panic!("no fixture {other}"),
        }
    }

    fn ctx() -> DeliveryContext {
        DeliveryContext {
            received_at: 1_785_852_300_000,
            delivery_id: None,
        }
    }

    /// Parses through `dyn Provider`, as ingest and the merge functions do.
    fn parse(body: &[u8]) -> Result<Vec<CanonicalEvent>> {
        (&Twilio as &dyn Provider).parse(body, &ctx())
    }

    fn one(body: &[u8]) -> CanonicalEvent {
        let mut events = parse(body).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    /// A status callback with these fields, in this order.
    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    fn callback(status: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut pairs = vec![
            ("CallSid", OUTBOUND),
            ("CallStatus", status),
            ("CallbackSource", CALL_PROGRESS),
            ("Direction", "inbound"),
            ("From", LEAD_NUMBER),
            ("To", AGENT_NUMBER),
            ("Timestamp", "Tue, 04 Aug 2026 14:04:06 +0000"),
        ];
        pairs.extend_from_slice(extra);
        form(&pairs)
    }

    fn status_code(result: Result<Vec<CanonicalEvent>>) -> u16 {
        result.unwrap_err().status()
    }

    #[test]
    fn the_fixtures_follow_one_outbound_call_through_its_statuses() {
        // GIVEN the four status callbacks of one outbound call
        let expected = [
            ("initiated", CallStatus::Initiated, 1_785_852_131_000),
            ("ringing", CallStatus::Ringing, 1_785_852_132_000),
            ("in_progress", CallStatus::InProgress, 1_785_852_139_000),
        ];
        for (name, status, at) in expected {
            // WHEN each is parsed
            let event = one(fixture(name));
            // THEN it starts the call, under its CallSid, at its Timestamp
            assert_eq!(event.event_type, EventType::CallStarted, "{name}");
            assert_eq!(event.provider, "twilio");
            assert_eq!(event.call_id, OUTBOUND);
            assert_eq!(event.occurred_at, Some(at));
            let p = patch(&event);
            assert_eq!(p.status, Some(status));
            assert_eq!(p.direction.as_deref(), Some("outbound"));
            assert_eq!(p.from_number.as_deref(), Some(AGENT_NUMBER));
            assert_eq!(p.to_number.as_deref(), Some(LEAD_NUMBER));
            assert_eq!(p.ended_at, None);
            assert_eq!(p.outcome, None);
            let metadata = p.metadata.as_ref().unwrap();
            assert_eq!(metadata["Direction"], "outbound-api");
            assert_eq!(metadata["CallbackSource"], CALL_PROGRESS);
        }
        assert_eq!(
            one(fixture("in_progress")).provider_event.as_str(),
            "in-progress"
        );
        assert_eq!(
            patch(&one(fixture("in_progress"))).started_at,
            Some(1_785_852_139_000)
        );
        assert_eq!(patch(&one(fixture("ringing"))).started_at, None);

        // AND the completed callback ends it with Twilio's duration, in milliseconds
        let ended = one(fixture("completed"));
        assert_eq!(ended.event_type, EventType::CallEnded);
        assert_eq!(ended.provider_event, "completed");
        assert_eq!(ended.call_id, OUTBOUND);
        let p = patch(&ended);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.provider_status.as_deref(), Some("completed"));
        assert_eq!(p.ended_at, Some(1_785_852_246_000));
        assert_eq!(p.duration_ms, Some(107_000), "CallDuration, never Duration");
        // started = ended − CallDuration: the in-progress Timestamp
        assert_eq!(p.started_at, Some(1_785_852_139_000));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        assert_eq!(p.end_reason.as_deref(), Some("completed"));
        assert_eq!(p.metadata.as_ref().unwrap()["SipResponseCode"], "200");
        assert!(p.agent.is_none() && p.transcript.is_none() && p.cost.is_none());
    }

    #[test]
    fn the_fixtures_merge_into_one_answered_call() {
        // GIVEN the call's callbacks, delivered out of order
        let mut record = CallRecord::new("twilio", OUTBOUND);
        for name in ["completed", "ringing", "in_progress", "initiated"] {
            record.merge(&one(fixture(name)));
        }
        // THEN the record is the call's
        assert_eq!(record.status, Some(CallStatus::Ended));
        assert_eq!(record.started_at, Some(1_785_852_139_000));
        assert_eq!(record.ended_at, Some(1_785_852_246_000));
        assert_eq!(record.duration_ms, Some(107_000));
        assert_eq!(record.direction.as_deref(), Some("outbound"));
        assert!(!record.missed);
    }

    #[test]
    fn an_unanswered_inbound_call_is_missed() {
        // GIVEN the no-answer callback of an inbound call
        let event = one(fixture("no_answer_inbound"));
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(event.call_id, INBOUND);
        assert_eq!(event.occurred_at, Some(1_785_921_342_000));
        let p = patch(&event);
        assert_eq!(p.direction.as_deref(), Some("inbound"));
        assert_eq!(p.outcome.as_deref(), Some("no_answer"));
        assert_eq!(p.end_reason.as_deref(), Some("no-answer"));
        assert_eq!(p.duration_ms, Some(0));
        assert_eq!(p.started_at, p.ended_at);
        // WHEN it is merged THEN the record is a missed call
        let mut record = CallRecord::new("twilio", INBOUND);
        record.merge(&event);
        assert!(record.missed);
    }

    #[test]
    fn the_missed_rule_covers_every_unanswered_end() {
        let missed = |status: &str, direction: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("Direction", direction)];
            pairs.extend_from_slice(extra);
            let body = callback(status, &[]);
            // Replace the callback's direction with the one under test.
            let mut fields = form_fields(&body).unwrap();
            fields.retain(|(n, _)| n != "Direction");
            fields.extend(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())));
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            let event = one(body.as_bytes());
            let mut record = CallRecord::new("twilio", OUTBOUND);
            record.merge(&event);
            (record.missed, patch(&event).outcome.clone().unwrap())
        };
        // Unanswered inbound ends are missed, whatever their word.
        assert_eq!(missed("busy", "inbound", &[]), (true, "busy".into()));
        assert_eq!(
            missed("no-answer", "inbound", &[]),
            (true, "no_answer".into())
        );
        assert_eq!(
            missed("canceled", "inbound", &[]),
            (true, "canceled".into())
        );
        assert_eq!(missed("failed", "inbound", &[]), (true, "failed".into()));
        assert_eq!(
            missed("completed", "inbound", &[("CallDuration", "0")]),
            (true, "no_answer".into())
        );
        // Answered, or outbound, is not missed.
        assert_eq!(
            missed("completed", "inbound", &[("CallDuration", "42")]),
            (false, "completed".into())
        );
        assert_eq!(
            missed("completed", "inbound", &[]),
            (false, "completed".into())
        );
        assert_eq!(
            missed("no-answer", "outbound-api", &[]),
            (false, "no_answer".into())
        );
        assert_eq!(
            missed("busy", "outbound-dial", &[("CallDuration", "0")]),
            (false, "busy".into())
        );
    }

    #[test]
    fn every_call_status_maps_to_its_event_status_and_outcome() {
        let cases = [
            ("queued", EventType::CallStarted, CallStatus::Queued, None),
            (
                "initiated",
                EventType::CallStarted,
                CallStatus::Initiated,
                None,
            ),
            ("ringing", EventType::CallStarted, CallStatus::Ringing, None),
            (
                "in-progress",
                EventType::CallStarted,
                CallStatus::InProgress,
                None,
            ),
            (
                "answered",
                EventType::CallStarted,
                CallStatus::InProgress,
                None,
            ),
            (
                "completed",
                EventType::CallEnded,
                CallStatus::Ended,
                Some("completed"),
            ),
            (
                "busy",
                EventType::CallEnded,
                CallStatus::Ended,
                Some("busy"),
            ),
            (
                "no-answer",
                EventType::CallEnded,
                CallStatus::Ended,
                Some("no_answer"),
            ),
            (
                "failed",
                EventType::CallEnded,
                CallStatus::Ended,
                Some("failed"),
            ),
            (
                "canceled",
                EventType::CallEnded,
                CallStatus::Ended,
                Some("canceled"),
            ),
        ];
        for (word, event_type, status, outcome) in cases {
            let event = one(&callback(word, &[("CallDuration", "12")]));
            assert_eq!(event.event_type, event_type, "{word}");
            assert_eq!(event.provider_event, word);
            let p = patch(&event);
            assert_eq!(p.status, Some(status), "{word}");
            assert_eq!(p.provider_status.as_deref(), Some(word));
            assert_eq!(p.outcome.as_deref(), outcome, "{word}");
            if event_type == EventType::CallEnded {
                assert_eq!(p.end_reason.as_deref(), Some(word));
                assert_eq!(p.duration_ms, Some(12_000));
                assert_eq!(p.started_at, Some(1_785_852_246_000 - 12_000));
            } else {
                assert_eq!(p.duration_ms, None, "{word}");
            }
        }
    }

    #[test]
    fn optional_fields_go_to_the_record_or_its_metadata() {
        let event = one(&callback(
            "completed",
            &[
                ("CallDuration", "7"),
                ("ParentCallSid", "CA0000000000000000000000000000parent"),
                ("AnsweredBy", "machine_end_beep"),
                (
                    "RecordingUrl",
                    "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
                ),
                ("Duration", "1"),
                ("SipResponseCode", ""),
            ],
        ));
        let p = patch(&event);
        assert_eq!(
            p.recording_url.as_deref(),
            Some("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
        );
        let metadata = p.metadata.as_ref().unwrap();
        assert_eq!(
            metadata["ParentCallSid"],
            "CA0000000000000000000000000000parent"
        );
        assert_eq!(metadata["AnsweredBy"], "machine_end_beep");
        assert_eq!(metadata["Direction"], "inbound");
        // Empty values say nothing; Duration (billed minutes) is not kept.
        assert!(!metadata.contains_key("SipResponseCode"));
        assert!(!metadata.contains_key("Duration"));
        assert_eq!(p.duration_ms, Some(7_000));
    }

    #[test]
    fn an_unknown_direction_is_left_unknown() {
        let mut fields = form_fields(&callback("ringing", &[])).unwrap();
        fields.retain(|(n, _)| n != "Direction");
        fields.push(("Direction".into(), "trunking-originating".into()));
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let event = one(body.as_bytes());
        assert_eq!(patch(&event).direction, None);
        assert_eq!(
            patch(&event).metadata.as_ref().unwrap()["Direction"],
            "trunking-originating"
        );
    }

    #[test]
    fn a_redelivery_has_the_same_key_however_it_is_encoded() {
        // GIVEN the completed callback, and the same fields re-encoded: another order, `%20`
        // for `+`, lower-case escapes
        let original = fixture("completed");
        let text = std::str::from_utf8(original).unwrap();
        let mut pieces: Vec<&str> = text.split('&').collect();
        pieces.reverse();
        let reencoded = pieces
            .join("&")
            .replace('+', "%20")
            .replace("%2B", "%2b")
            .replace("%3A", "%3a");
        assert_ne!(reencoded.as_bytes(), original);
        // THEN both are the same delivery
        assert_eq!(
            one(original).dedupe_key,
            one(reencoded.as_bytes()).dedupe_key
        );
        // AND the same callback received later is too
        let later = DeliveryContext {
            received_at: ctx().received_at + 60_000,
            delivery_id: None,
        };
        assert_eq!(
            Twilio.parse_payload(original, &later).unwrap()[0].dedupe_key,
            one(original).dedupe_key
        );
    }

    #[test]
    fn each_sequence_number_is_its_own_delivery() {
        let first = one(&callback("completed", &[("SequenceNumber", "3")]));
        let again = one(&callback(
            "completed",
            &[("SequenceNumber", "3"), ("AccountSid", "AC1")],
        ));
        let other = one(&callback("completed", &[("SequenceNumber", "4")]));
        assert_eq!(first.dedupe_key, again.dedupe_key);
        assert_ne!(first.dedupe_key, other.dedupe_key);
        // The four statuses of the fixtures' call are four deliveries.
        let mut keys: Vec<String> = ["initiated", "ringing", "in_progress", "completed"]
            .iter()
            .map(|name| one(fixture(name)).dedupe_key)
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn without_a_sequence_number_the_status_names_the_delivery() {
        let completed = one(&callback("completed", &[("CallDuration", "5")]));
        let redelivered = one(&callback(
            "completed",
            &[("CallDuration", "5"), ("AccountSid", "AC1")],
        ));
        let ringing = one(&callback("ringing", &[]));
        assert_eq!(completed.dedupe_key, redelivered.dedupe_key);
        assert_ne!(completed.dedupe_key, ringing.dedupe_key);
        // A sequence number is another identity than a status.
        let sequenced = one(&callback(
            "completed",
            &[("CallDuration", "5"), ("SequenceNumber", "3")],
        ));
        assert_ne!(completed.dedupe_key, sequenced.dedupe_key);
    }

    #[test]
    fn a_sender_delivery_id_still_wins() {
        let body = callback("completed", &[("SequenceNumber", "3")]);
        let with_id = |id: &str| DeliveryContext {
            received_at: 1,
            delivery_id: Some(id.to_owned()),
        };
        let a = Twilio.parse_payload(&body, &with_id("d1")).unwrap();
        let b = Twilio.parse_payload(&body, &with_id("d2")).unwrap();
        assert_ne!(a[0].dedupe_key, b[0].dedupe_key);
    }

    #[test]
    fn bodies_that_are_not_status_callbacks_are_kept_as_unknown() {
        // A voice URL's TwiML request: a CallStatus, but no CallbackSource.
        let voice = form(&[
            ("CallSid", OUTBOUND),
            ("CallStatus", "ringing"),
            ("From", LEAD_NUMBER),
        ]);
        let event = one(&voice);
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.provider_event, "ringing");
        assert_eq!(event.call_id, OUTBOUND);
        assert_eq!(event.data, EventData::Opaque);

        // A status Twilio may add later.
        let event = one(&callback("paused", &[]));
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.provider_event, "paused");
        assert_eq!(event.occurred_at, Some(1_785_852_246_000));

        // Another callback source, no call, a timestamp that does not parse: still no error.
        let event = one(&form(&[
            ("CallbackSource", "conference-events"),
            ("Timestamp", "soon"),
            ("CallSid", " "),
        ]));
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.provider_event, "conference-events");
        assert_eq!(event.call_id, "unknown");
        assert_eq!(event.occurred_at, None);
        let event = one(b"a=1");
        assert_eq!(
            (event.provider_event.as_str(), event.call_id.as_str()),
            ("unknown", "unknown")
        );
    }

    #[test]
    fn bodies_that_are_not_forms_are_malformed() {
        for body in [
            &b""[..],
            b"  \n",
            b"{\"CallSid\":\"CA1\"}",
            b" [1]",
            b"CallSid=CA1&CallStatus=completed\n",
            b"CallSid=CA 1",
            b"CallSid=CA\x001",
            "From=\u{e9}".as_bytes(),
            b"From=%FF",
            b"From=%C3&To=%A9",
        ] {
            assert_eq!(
                status_code(parse(body)),
                400,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn unusable_fields_are_refused_naming_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (
                &form(&[
                    ("CallStatus", "completed"),
                    ("CallbackSource", CALL_PROGRESS),
                ]),
                "CallSid",
            ),
            (
                &callback("completed", &[("CallDuration", "forever")]),
                "CallDuration",
            ),
            (
                &callback("completed", &[("CallDuration", "-5")]),
                "CallDuration",
            ),
            (
                &callback("completed", &[("SequenceNumber", "one")]),
                "SequenceNumber",
            ),
            (&callback("ringing", &[("CallSid", "CA2")]), "CallSid"),
            (
                &callback("ringing", &[("Timestamp", "2026-08-04T14:04:06Z")]),
                "Timestamp",
            ),
        ];
        for (body, field) in cases {
            let error = parse(body).unwrap_err();
            assert_eq!(error.status(), 422, "{field}");
            assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
        }
        // The same name twice with the same value is one value.
        assert!(parse(&callback("ringing", &[("CallSid", OUTBOUND)])).is_ok());
    }

    #[test]
    fn form_fields_decode_as_every_form_encoder_does() {
        let fields = |body: &str| form_fields(body.as_bytes()).unwrap();
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(fields("a=b+c"), [pair("a", "b c")]);
        assert_eq!(fields("a=b%20c"), [pair("a", "b c")]);
        assert_eq!(fields("From=%2B1415"), [pair("From", "+1415")]);
        assert_eq!(fields("From=%2b1415"), [pair("From", "+1415")]);
        assert_eq!(fields("a%3Db=c%26d"), [pair("a=b", "c&d")]);
        assert_eq!(fields("a=b=c"), [pair("a", "b=c")]);
        assert_eq!(
            fields("Digits=5678&Digits=1234&Digits=1234"),
            [
                pair("Digits", "5678"),
                pair("Digits", "1234"),
                pair("Digits", "1234")
            ]
        );
        assert_eq!(fields("a=&b="), [pair("a", ""), pair("b", "")]);
        assert_eq!(fields("flag&a=1"), [pair("flag", ""), pair("a", "1")]);
        assert_eq!(fields("a=1&&b=2&"), [pair("a", "1"), pair("b", "2")]);
        assert_eq!(
            fields("a=100%&b=%zz"),
            [pair("a", "100%"), pair("b", "%zz")]
        );
        assert_eq!(
            fields("caf%C3%A9=%E2%9C%93"),
            [pair("caf\u{e9}", "\u{2713}")]
        );
        // The provider notes' form-decoding vector: values are compared decoded.
        let vector = fields(
            "CallSid=CA00000000000000000000000000000001&CallStatus=no-answer&From=%2B15005550006\
             &To=%2B15005550001&Timestamp=Sun%2C+25+Mar+2018+09%3A53%3A19+%2B0000",
        );
        assert_eq!(vector[2], pair("From", "+15005550006"));
        assert_eq!(
            vector[4],
            pair("Timestamp", "Sun, 25 Mar 2018 09:53:19 +0000")
        );
    }

    #[test]
    fn timestamps_are_read_as_rfc_2822() {
        let ms = rfc2822_to_ms;
        assert_eq!(
            ms("Sun, 25 Mar 2018 09:53:19 +0000"),
            Some(1_521_971_599_000)
        );
        assert_eq!(ms("25 Mar 2018 09:53:19 +0000"), Some(1_521_971_599_000));
        assert_eq!(
            ms(" Sun, 25 Mar 2018 10:53:19 +0100 "),
            Some(1_521_971_599_000)
        );
        assert_eq!(
            ms("Sun, 25 Mar 2018 04:53:19 -0500"),
            Some(1_521_971_599_000)
        );
        assert_eq!(ms("Sun, 25 Mar 2018 09:53:19 GMT"), Some(1_521_971_599_000));
        assert_eq!(ms("Sun, 25 Mar 2018 09:53 +0000"), Some(1_521_971_580_000));
        // Names written out, cut short or in another case (a published Twilio capture).
        assert_eq!(
            ms("Thurs, 20 July 1989 18:30:43 +0000"),
            Some(616_962_643_000)
        );
        assert_eq!(
            ms("thursday, 20 JUL 1989 18:30:43 +0000"),
            Some(616_962_643_000)
        );
        assert_eq!(
            ms("Tue, 04 Sept 2029 00:00:00 +0000"),
            Some(1_883_174_400_000)
        );
        // Anything else is not a Timestamp.
        for bad in [
            "",
            "2026-08-04T14:04:06Z",
            "1785852246",
            "Sun, 25 Mar 2018",
            "Sun, 32 Mar 2018 09:53:19 +0000",
            "Sun, 25 Mars 2018 09:53:19 +0000",
            "Su, 25 Mar 2018 09:53:19 +0000",
            "Sun, 25 Mar 2018 25:53:19 +0000",
            "Sun, 25 Mar 2018 09:53:19 +0000 trailing",
            "Thu, 01 Jan 1960 00:00:00 +0000",
            // A day name that is not the date's.
            "Mon, 25 Mar 2018 09:53:19 +0000",
        ] {
            assert_eq!(ms(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = parse(&body) {
                prop_assert!(matches!(error.status(), 400 | 422), "{error}");
            }
        }

        #[test]
        fn any_mangled_callback_parses_or_is_refused(
            cut in 0usize..400,
            byte in any::<u8>(),
        ) {
            let mut body = fixture("completed").to_vec();
            let at = cut % body.len();
            body[at] = byte;
            if let Err(error) = parse(&body) {
                prop_assert!(matches!(error.status(), 400 | 422), "{error}");
            }
        }

        #[test]
        fn form_fields_agree_with_form_urlencoded(body in "[A-Za-z0-9%+=&._~*-]{0,64}") {
            match form_fields(body.as_bytes()) {
                Ok(fields) => {
                    let crate_fields: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    prop_assert_eq!(fields, crate_fields);
                }
                Err(error) => prop_assert_eq!(error.status(), 400),
            }
        }

        #[test]
        fn encoded_fields_decode_to_themselves(
            pairs in proptest::collection::vec(("\\PC{1,12}", "\\PC{0,12}"), 1..6)
        ) {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            prop_assert_eq!(form_fields(body.as_bytes()).unwrap(), pairs);
        }
    }
}
