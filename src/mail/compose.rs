//! A run's mails: the results mail to the submitter (with the results CSV
//! attached) and one credentials mail per new user, formatted with stable
//! Message-IDs and ready for the outbox.

use std::path::Path;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest, Sha256};

use super::config::{MailConfig, PolicyMail, SendAt};
use super::outbox::{MailKind, NewMail};
use super::templates::{Count, CredentialsContext, Rendered, ResultsContext, Templates};
use crate::core::{Secret, Summary};

/// What the results mail reports about a run (from the sync's `RunReport`).
pub struct RunFacts<'a> {
    /// The run's id (the journal's); part of every Message-ID.
    pub run_id: &'a str,
    /// The submitted file's name, as the submitter knows it.
    pub file_name: &'a str,
    pub policy: &'a str,
    /// `apply` (true) or `check` (false: nothing was written).
    pub apply: bool,
    pub summary: &'a Summary,
    /// Why the file was rejected as a whole.
    pub file_error: Option<String>,
    /// Safety limits that held changes back (their sentences).
    pub breaches: Vec<String>,
    pub target_error: Option<String>,
    pub warnings: &'a [String],
    /// The results CSV, attached byte for byte.
    pub results: &'a Path,
}

/// A user whose password dirsync generated. No `Debug`: holds the password.
pub struct NewUser {
    /// The account was created in this run (false: its password was reset).
    pub created: bool,
    pub username: String,
    pub email: Option<String>,
    pub password: Secret,
    pub must_change: bool,
}

/// The mails of one run, and notes for the log (never a password).
pub struct RunMails {
    pub mails: Vec<NewMail>,
    pub notes: Vec<String>,
}

/// The Message-ID of a run's mail to a recipient: the same every time it is
/// computed, so a resumed run or a retry never makes a second, different mail.
pub fn message_id(run_id: &str, kind: MailKind, recipient: &str, from: &Mailbox) -> String {
    let mut h = Sha256::new();
    for part in [run_id, kind.as_str(), &recipient.to_lowercase()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = hex::encode(h.finalize());
    format!("{}.{}@{}", &digest[..32], kind.as_str(), from.email.domain())
}

pub(super) fn parse_mailbox(what: &str, s: &str) -> Result<Mailbox, String> {
    s.parse::<Mailbox>()
        .map_err(|e| format!("{what} {s:?} is not a mail address: {e}"))
}

/// 1204 → "1,204".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const CHANGE_LABELS: [(&str, &str); 9] = [
    ("unchanged", "unchanged"),
    ("new", "new"),
    ("update", "updated"),
    ("reset", "password resets"),
    ("leaver", "leavers"),
    ("joiner", "joiners"),
    ("delete", "deleted"),
    ("absent", "absent"),
    ("error", "rejected"),
];

/// "hr.csv: 1,204 unchanged, 12 new, 3 leavers, 2 rejected".
pub fn results_subject(f: &RunFacts) -> String {
    if let Some(e) = &f.file_error {
        return format!("{}: rejected, nothing written ({e})", f.file_name);
    }
    let mut parts: Vec<String> = CHANGE_LABELS
        .iter()
        .filter_map(|(name, label)| {
            let n = f.summary.change(name);
            (n > 0).then(|| format!("{} {label}", thousands(n)))
        })
        .collect();
    for (verdict, label) in [("failed", "failed"), ("held", "held back")] {
        if let Some(&n) = f.summary.verdicts.get(verdict).filter(|n| **n > 0) {
            parts.push(format!("{} {label}", thousands(n)));
        }
    }
    if parts.is_empty() {
        parts.push("no rows".into());
    }
    let mode = if f.apply { "" } else { " (preview, nothing written)" };
    let target = if f.target_error.is_some() {
        " — target failed"
    } else {
        ""
    };
    format!("{}{mode}: {}{target}", f.file_name, parts.join(", "))
}

fn results_context(f: &RunFacts) -> ResultsContext {
    ResultsContext {
        file: f.file_name.to_string(),
        policy: f.policy.to_string(),
        run_id: f.run_id.to_string(),
        preview: !f.apply,
        rejected: f.file_error.is_some(),
        reason: f.file_error.clone().unwrap_or_default(),
        target_error: f.target_error.clone().unwrap_or_default(),
        changes: CHANGE_LABELS
            .iter()
            .filter_map(|(name, label)| {
                let count = f.summary.change(name);
                (count > 0).then(|| Count {
                    name: name.to_string(),
                    label: label.to_string(),
                    count,
                })
            })
            .collect(),
        verdicts: ["done", "preview", "failed", "held", "skipped"]
            .iter()
            .filter_map(|v| {
                let count = f.summary.verdicts.get(v).copied().unwrap_or(0);
                (count > 0).then(|| Count {
                    name: v.to_string(),
                    label: v.to_string(),
                    count,
                })
            })
            .collect(),
        held: f.breaches.clone(),
        r#override: "--allow-over-limit".into(),
        warnings: f.warnings.to_vec(),
        results_file: attachment_name(f.results),
        subject: results_subject(f),
    }
}

fn attachment_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.csv".into())
}

/// Format a message and wrap it for the outbox.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    from: &Mailbox,
    to: &[Mailbox],
    cc: &[Mailbox],
    id: String,
    run_id: &str,
    kind: MailKind,
    rendered: &Rendered,
    attachment: Option<(String, Vec<u8>)>,
) -> Result<NewMail, String> {
    let mut b = Message::builder()
        .from(from.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{id}>")));
    for t in to {
        b = b.to(t.clone());
    }
    for c in cc {
        b = b.cc(c.clone());
    }
    let msg = match attachment {
        Some((name, bytes)) => {
            // Base64 keeps the CSV byte for byte (line endings, BOM, encoding).
            let body_bytes = Body::new_with_encoding(bytes, ContentTransferEncoding::Base64)
                .map_err(|_| "cannot encode the results attachment".to_string())?;
            let csv = ContentType::parse("text/csv").map_err(|e| e.to_string())?;
            let mixed = match &rendered.html {
                Some(h) => {
                    MultiPart::mixed().multipart(MultiPart::alternative_plain_html(rendered.text.clone(), h.clone()))
                }
                None => MultiPart::mixed().singlepart(SinglePart::plain(rendered.text.clone())),
            };
            b.multipart(mixed.singlepart(Attachment::new(name).body(body_bytes, csv)))
        }
        None => match &rendered.html {
            Some(h) => b.multipart(MultiPart::alternative_plain_html(rendered.text.clone(), h.clone())),
            None => b.singlepart(SinglePart::plain(rendered.text.clone())),
        },
    }
    .map_err(|e| format!("cannot build the mail: {e}"))?;
    let recipients = msg.envelope().to().iter().map(|a| a.to_string()).collect();
    Ok(NewMail {
        id,
        run_id: run_id.to_string(),
        kind,
        sender: from.email.to_string(),
        recipients,
        subject: rendered.subject.clone(),
        message: msg.formatted(),
        not_before: 0,
        rate_group: None,
        rate_per_minute: None,
    })
}

/// Every mail of a run: the results mail to `submitter` (+ cc) when there is
/// one, and a credentials mail to each new user, per the policy's `[mail]`.
pub fn mails_for_run(
    cfg: &MailConfig,
    pm: &PolicyMail,
    templates: &Templates,
    facts: &RunFacts,
    submitter: Option<&str>,
    users: &[NewUser],
    now: i64,
) -> Result<RunMails, String> {
    let from = parse_mailbox("mail.from", &cfg.from)?;
    let mut mails = Vec::new();
    let mut notes = Vec::new();
    match submitter {
        Some(s) if pm.results => {
            // One address, or several separated by commas (an upload in the
            // console: the inbox's submitter and the uploader).
            let to = s
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| parse_mailbox("submitter", a))
                .collect::<Result<Vec<_>, _>>()?;
            let Some(first) = to.first() else {
                return Err(format!("submitter {s:?} holds no mail address"));
            };
            let cc = cfg
                .cc
                .iter()
                .chain(&pm.cc)
                .map(|c| parse_mailbox("cc", c))
                .collect::<Result<Vec<_>, _>>()?;
            let rendered = templates.render_results(&results_context(facts))?;
            let bytes = std::fs::read(facts.results)
                .map_err(|e| format!("cannot read the results file {}: {e}", facts.results.display()))?;
            let id = message_id(facts.run_id, MailKind::Results, first.email.as_ref(), &from);
            let mut m = build(
                &from,
                &to,
                &cc,
                id,
                facts.run_id,
                MailKind::Results,
                &rendered,
                Some((attachment_name(facts.results), bytes)),
            )?;
            m.not_before = now;
            mails.push(m);
        }
        Some(_) => {}
        None => notes.push("no submitter address: results mail not sent".into()),
    }
    if !pm.credentials {
        if !users.is_empty() {
            notes.push(format!(
                "{} generated password(s) not mailed: the policy has [mail] credentials = false",
                users.len()
            ));
        }
        return Ok(RunMails { mails, notes });
    }
    let not_before = match &pm.send_at {
        Some(s) => SendAt::parse(s)?.next_at_or_after(now),
        None => now,
    };
    for u in users {
        let Some(email) = u.email.as_deref().filter(|e| !e.is_empty()) else {
            notes.push(format!(
                "user {} has no email address: their generated password was mailed to nobody; reset it",
                u.username
            ));
            continue;
        };
        let to = parse_mailbox("user email", email)?;
        let ctx = CredentialsContext {
            username: u.username.clone(),
            email: email.to_string(),
            password: u.password.expose().to_string(),
            must_change: u.must_change,
            created: u.created,
            policy: facts.policy.to_string(),
            run_id: facts.run_id.to_string(),
        };
        let rendered = templates.render_credentials(&ctx)?;
        let id = message_id(facts.run_id, MailKind::Credentials, to.email.as_ref(), &from);
        let mut m = build(
            &from,
            &[to],
            &[],
            id,
            facts.run_id,
            MailKind::Credentials,
            &rendered,
            None,
        )?;
        m.not_before = not_before;
        m.rate_group = pm.max_per_minute.map(|_| format!("credentials:{}", facts.policy));
        m.rate_per_minute = pm.max_per_minute;
        mails.push(m);
    }
    Ok(RunMails { mails, notes })
}

/// A test message for `dirsync mail test`.
pub fn test_mail(cfg: &MailConfig, to: &str, now: i64) -> Result<NewMail, String> {
    let from = parse_mailbox("mail.from", &cfg.from)?;
    let to = parse_mailbox("--to", to)?;
    let run_id = format!("test-{now}");
    let rendered = Rendered {
        subject: "dirsync test message".into(),
        text: "This is a test message from dirsync (`dirsync mail test`). Mail delivery works.\n".into(),
        html: None,
    };
    let id = message_id(&run_id, MailKind::Test, to.email.as_ref(), &from);
    let mut m = build(&from, &[to], &[], id, &run_id, MailKind::Test, &rendered, None)?;
    m.not_before = now;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_counts() {
        let mut s = Summary::default();
        s.changes.insert("unchanged", 1204);
        s.changes.insert("new", 12);
        s.changes.insert("leaver", 3);
        s.changes.insert("error", 2);
        let f = RunFacts {
            run_id: "r",
            file_name: "hr-2026-11-21.csv",
            policy: "staff",
            apply: true,
            summary: &s,
            file_error: None,
            breaches: vec![],
            target_error: None,
            warnings: &[],
            results: Path::new("x"),
        };
        assert_eq!(
            results_subject(&f),
            "hr-2026-11-21.csv: 1,204 unchanged, 12 new, 3 leavers, 2 rejected"
        );
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn message_id_is_stable() {
        let from: Mailbox = "dirsync <d@example.org>".parse().unwrap(); // ok: test
        let a = message_id("run1", MailKind::Results, "HR@example.org", &from);
        assert_eq!(a, message_id("run1", MailKind::Results, "hr@example.org", &from));
        assert_ne!(a, message_id("run2", MailKind::Results, "hr@example.org", &from));
        assert!(a.ends_with("@example.org"));
    }
}
