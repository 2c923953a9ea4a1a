//! Mail as the tests see it: dirsync's `[mail]` section for a plain test SMTP
//! server, and the messages that server received, parsed. Shared by
//! tests/mail.rs and tests/sftp.rs:
//!
//! ```ignore
//! #[path = "common/mime.rs"]
//! mod mime;
//! ```

use mail_parser::{Message, MessageParser};

/// A `[mail]` section for plain SMTP to 127.0.0.1:`port`, with `extra` lines.
pub fn smtp_section(port: u16, extra: &str) -> String {
    format!(
        "[mail]\nfrom = \"dirsync <dirsync@example.org>\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         timeout_secs = 5\n{extra}\n"
    )
}

pub fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("a MIME message")
}

/// The first `To:` address, in lower case.
pub fn to_of(m: &Message) -> String {
    m.to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_lowercase()
}
