//! The local stack's state file (`.local/dev.json` by default): written by `callhook dev` while it
//! runs, read by every other command so that, from the project folder, they find the local stack
//! with no flags. It holds only generated dev credentials, never ones the user configured.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const DEFAULT_PATH: &str = ".local/dev.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub dynamodb_endpoint: String,
    pub events_table: String,
    pub calls_table: String,
    pub base_url: String,
    /// `keep` or `redact`.
    pub opt_out_policy: String,
    /// Provider → webhook URL, with the dev token in the query where one is used.
    pub webhooks: BTreeMap<String, String>,
    /// Provider → the credentials `callhook dev` generated for it.
    #[serde(default)]
    pub dev_credentials: BTreeMap<String, DevCredential>,
    /// Under the redact policy, the key the number indexes hash numbers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_index_key: Option<String>,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevCredential {
    /// The authentication scheme (`token`, `hmac-sha256`, ...).
    pub scheme: String,
    /// A token (token scheme) or a signing secret (the others).
    pub value: String,
}

impl State {
    /// The state file, if there is one.
    pub fn read(path: &Path) -> Result<Option<Self>, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a callhook state file: {e}", path.display()))
    }

    /// Writes the file readable by its owner only: it holds the dev credentials. (On Windows a
    /// new file inherits its folder's access list, which under the user's profile is theirs.)
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")
    }
}
