//! `[mail]` in a policy file: what is sent (results, credentials), when
//! (`send_at`), and with which templates and subjects.

use std::path::PathBuf;

use serde::Deserialize;

/// `[mail]` in a policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMail {
    /// Mail the results of each run to the submitter. Default true.
    #[serde(default = "yes")]
    pub results: bool,
    /// Mail generated passwords to the new users. Default true. Without it a
    /// generated password reaches nobody: set `[passwords] generate = "never"`.
    #[serde(default = "yes")]
    pub credentials: bool,
    /// Hold credentials mails until this time of day: `"08:00"` (UTC) or
    /// `"08:00+01:00"`. Default: send at once.
    pub send_at: Option<String>,
    /// At most this many credentials mails per minute for this policy.
    pub max_per_minute: Option<u32>,
    /// More copies of this policy's results mails (besides `[mail] cc`).
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub templates: TemplatePaths,
}

impl Default for PolicyMail {
    fn default() -> Self {
        PolicyMail {
            results: true,
            credentials: true,
            send_at: None,
            max_per_minute: None,
            cc: Vec::new(),
            templates: TemplatePaths::default(),
        }
    }
}

const fn yes() -> bool {
    true
}

/// `[mail.templates]` in a policy: files relative to the policy file. A
/// policy that gives a `*_text` template without its `*_html` sends text only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatePaths {
    pub results_text: Option<PathBuf>,
    pub results_html: Option<PathBuf>,
    pub credentials_text: Option<PathBuf>,
    pub credentials_html: Option<PathBuf>,
    /// The activation mail (`[passwords] deliver = "activation"`).
    pub activation_text: Option<PathBuf>,
    pub activation_html: Option<PathBuf>,
    /// Inline templates for the subject lines.
    pub results_subject: Option<String>,
    pub credentials_subject: Option<String>,
    pub activation_subject: Option<String>,
}

/// A time of day, as minutes after midnight UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendAt {
    minutes_utc: i64,
}

impl SendAt {
    /// `"HH:MM"` (UTC) or `"HH:MM+HH:MM"` / `"HH:MM-HH:MM"` (local time at that offset).
    pub fn parse(s: &str) -> Result<SendAt, String> {
        let bad = || format!("send_at = {s:?}: write a time of day as \"08:00\" (UTC) or \"08:00+01:00\"");
        let hm = |t: &str| -> Option<i64> {
            let (h, m) = t.split_once(':')?;
            let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
            ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
        };
        let (time, offset) = match s.get(5..) {
            Some("") | None => (s, 0),
            Some(off) => {
                let sign = match off.chars().next() {
                    Some('+') => 1,
                    Some('-') => -1,
                    _ => return Err(bad()),
                };
                (&s[..5], sign * hm(&off[1..]).ok_or_else(bad)?)
            }
        };
        let local = hm(time).ok_or_else(bad)?;
        Ok(SendAt {
            minutes_utc: (local - offset).rem_euclid(24 * 60),
        })
    }

    /// The first moment at or after `now` (Unix seconds) at this time of day.
    pub fn next_at_or_after(self, now: i64) -> i64 {
        let day = now.div_euclid(86_400) * 86_400;
        let today = day + self.minutes_utc * 60;
        if today >= now {
            today
        } else {
            today + 86_400
        }
    }
}
