//! The seed fixtures, built into the binary so `callhook send --all` works from any folder and
//! against any deployment. Eight of them are the providers' own JSON examples, verbatim; the
//! ClawOps ones, and those of the providers added since (Retell, Vapi, Bland, ElevenLabs, Twilio,
//! Telnyx), are built from their documented fields (each folder's README says from where).
//!
//! The list is in a sensible delivery order per call. A test keeps it equal to the contents of
//! `tests/fixtures/`.

/// One fixture: `tests/fixtures/<provider>/<name>.<extension>` (`json`, or `form` for a form
/// body).
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub provider: &'static str,
    pub name: &'static str,
    pub extension: &'static str,
    pub body: &'static [u8],
}

impl Fixture {
    /// The body's media type.
    pub fn content_type(&self) -> &'static str {
        if self.extension == "form" {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        }
    }
}

macro_rules! fixtures {
    ($($provider:literal / $name:literal . $extension:literal),* $(,)?) => {
        &[$(Fixture {
            provider: $provider,
            name: $name,
            extension: $extension,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $provider, "/", $name, ".",
                $extension
            )),
        }),*]
    };
}

/// Every seed fixture.
pub const ALL: &[Fixture] = fixtures![
    "vox" / "v2_call_started" . "json",
    "vox" / "v2_mid_call" . "json",
    "vox" / "v2_call_ended" . "json",
    "vox" / "v2_call_analyzed" . "json",
    "vox" / "v1_call_started" . "json",
    "vox" / "v1_mid_call" . "json",
    "vox" / "v1_call_ended" . "json",
    "clawops" / "call_initiated" . "json",
    "clawops" / "call_ringing" . "json",
    "clawops" / "call_answered" . "json",
    "clawops" / "call_completed" . "json",
    "clawops" / "missed_call_initiated" . "json",
    "clawops" / "missed_call_completed" . "json",
    "clawops" / "message_received" . "json",
    "synthflow" / "completed" . "json",
    "retell" / "call_started" . "json",
    "retell" / "transcript_updated" . "json",
    "retell" / "transfer_started" . "json",
    "retell" / "call_ended" . "json",
    "retell" / "call_analyzed" . "json",
    "retell" / "chat_ended" . "json",
    "vapi" / "status_update_in_progress" . "json",
    "vapi" / "transcript_final" . "json",
    "vapi" / "status_update_ended" . "json",
    "vapi" / "end_of_call_report" . "json",
    "vapi" / "assistant_request" . "json",
    "bland" / "post_call" . "json",
    "bland" / "post_call_delayed" . "json",
    "bland" / "missed_inbound" . "json",
    "elevenlabs" / "post_call_transcription" . "json",
    "elevenlabs" / "call_initiation_failure" . "json",
    "twilio" / "initiated" . "form",
    "twilio" / "ringing" . "form",
    "twilio" / "in_progress" . "form",
    "twilio" / "completed" . "form",
    "twilio" / "no_answer_inbound" . "form",
    "telnyx" / "call_initiated" . "json",
    "telnyx" / "call_answered" . "json",
    "telnyx" / "call_recording_saved" . "json",
    "telnyx" / "call_hangup" . "json",
    "telnyx" / "call_conversation_ended" . "json",
];

/// A fixture by `<provider>/<name>`, or by `<name>` within `provider`.
pub fn find(provider: &str, name: &str) -> Option<&'static Fixture> {
    let name = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".form"))
        .unwrap_or(name);
    let name = name
        .strip_prefix(provider)
        .and_then(|n| n.strip_prefix('/'))
        .unwrap_or(name);
    ALL.iter()
        .find(|f| f.provider == provider && f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_the_fixtures_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut on_disk = Vec::new();
        for provider in callhook::provider::REGISTRY {
            for entry in std::fs::read_dir(root.join(provider.name())).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                // Each folder's README says where its fixtures come from.
                if name != "README.md" {
                    on_disk.push(format!("{}/{}", provider.name(), name));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ALL
            .iter()
            .map(|f| format!("{}/{}.{}", f.provider, f.name, f.extension))
            .collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn find_takes_either_form() {
        assert_eq!(find("vox", "v2_call_ended").unwrap().name, "v2_call_ended");
        assert_eq!(
            find("vox", "vox/v2_call_ended.json").unwrap().name,
            "v2_call_ended"
        );
        assert!(find("vox", "completed").is_none());
    }
}
