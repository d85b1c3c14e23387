//! Secrets out of what is shown: [`Config::redacted`], what `aidocs config show` prints.

use crate::Config;

impl Config {
    /// The resolved settings as JSON with every secret replaced by `"<redacted>"`: keys named
    /// `api_key`, `password`, `token` or `secret`, API key hashes, every value under a
    /// source's `auth` (header and cookie names stay), and the password in a URL's user info
    /// (`redis://:pw@host`). What `aidocs config show` prints.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("the config serializes");
        redact(&mut v, "", false);
        v
    }
}

const REDACTED: &str = "<redacted>";

fn redact(v: &mut serde_json::Value, key: &str, all: bool) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                redact(child, k, all || (k == "auth" && key == "sources"));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, key, all)),
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => {
            if all || matches!(key, "api_key" | "password" | "token" | "secret" | "sha256" | "hash") {
                *s = REDACTED.to_owned();
            } else if let Ok(mut url) = url::Url::parse(s)
                && url.password().is_some()
            {
                let _ = url.set_password(Some(REDACTED));
                *s = url.to_string();
            }
        }
        _ => {}
    }
}
