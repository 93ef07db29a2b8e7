//! The seed fixtures, built into the binary so `callhook send --all` works from any folder and
//! against any deployment. Eight of them are the providers' own JSON examples, verbatim; the
//! ClawOps ones are built from its documented fields (its document has no JSON example).
//!
//! The list is in a sensible delivery order per call. A test keeps it equal to the contents of
//! `tests/fixtures/`.

/// One fixture: `tests/fixtures/<provider>/<name>.json`.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub provider: &'static str,
    pub name: &'static str,
    pub body: &'static [u8],
}

macro_rules! fixtures {
    ($($provider:literal / $name:literal),* $(,)?) => {
        &[$(Fixture {
            provider: $provider,
            name: $name,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $provider, "/", $name, ".json"
            )),
        }),*]
    };
}

/// Every seed fixture.
pub const ALL: &[Fixture] = fixtures![
    "vox" / "v2_call_started",
    "vox" / "v2_mid_call",
    "vox" / "v2_call_ended",
    "vox" / "v2_call_analyzed",
    "vox" / "v1_call_started",
    "vox" / "v1_mid_call",
    "vox" / "v1_call_ended",
    "clawops" / "call_initiated",
    "clawops" / "call_ringing",
    "clawops" / "call_answered",
    "clawops" / "call_completed",
    "clawops" / "missed_call_initiated",
    "clawops" / "missed_call_completed",
    "clawops" / "message_received",
    "synthflow" / "completed",
];

/// A fixture by `<provider>/<name>`, or by `<name>` within `provider`.
pub fn find(provider: &str, name: &str) -> Option<&'static Fixture> {
    let name = name.strip_suffix(".json").unwrap_or(name);
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
                on_disk.push(format!("{}/{}", provider.name(), name));
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ALL
            .iter()
            .map(|f| format!("{}/{}.json", f.provider, f.name))
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
