//! Sending one prepared message: SMTP (STARTTLS, implicit TLS, or plain for a
//! local relay) or `.eml` files. SMTP errors become advice an operator can act on.

use std::error::Error as StdError;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{Endpoint, MailConfig, TlsMode, TransportKind};
use crate::secrets::read_secret;

/// A way out for mail.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        endpoint: Endpoint,
        username: Option<String>,
        timeout: u64,
    },
    /// One `.eml` file per message (mode 0600: it may hold a password).
    File(std::path::PathBuf),
}

/// Why a message was not sent, as advice. `whole_relay` is true when the
/// relay itself is the problem (unreachable, TLS, login): the other queued
/// messages would fail the same way, so the pass stops.
#[derive(Debug, Clone)]
pub struct SendError {
    pub advice: String,
    pub whole_relay: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.advice)
    }
}

impl Mailer {
    /// Build the transport `[mail]` describes (reads the SMTP password).
    pub fn from_config(cfg: &MailConfig) -> Result<Mailer, String> {
        match cfg.transport {
            TransportKind::File => {
                let folder = cfg
                    .folder
                    .clone()
                    .ok_or_else(|| "mail.folder is not set for transport = \"file\"".to_string())?;
                crate::private_files::create_dir(&folder)
                    .map_err(|e| format!("cannot create the mail folder {}: {e}", folder.display()))?;
                Ok(Mailer::File(folder))
            }
            TransportKind::Smtp => {
                let ep = cfg.endpoint()?;
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ep.host.clone())
                    .port(ep.port)
                    .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
                if ep.tls != TlsMode::None {
                    let mut params = TlsParameters::builder(ep.host.clone());
                    if let Some(ca) = &cfg.ca_file {
                        let pem = std::fs::read(ca)
                            .map_err(|e| format!("mail.ca_file: cannot read {}: {e}", ca.display()))?;
                        let cert = Certificate::from_pem(&pem)
                            .map_err(|e| format!("mail.ca_file: {} is not a PEM certificate: {e}", ca.display()))?;
                        params = params.add_root_certificate(cert);
                    }
                    let params = params
                        .build_rustls()
                        .map_err(|e| format!("mail: TLS setup failed: {e}"))?;
                    b = b.tls(match ep.tls {
                        TlsMode::Implicit => Tls::Wrapper(params),
                        _ => Tls::Required(params),
                    });
                } else {
                    b = b.tls(Tls::None);
                }
                if let Some(user) = &cfg.username {
                    let password = read_secret(
                        cfg.password_file.as_deref(),
                        cfg.password_env.as_deref(),
                        "mail password",
                    )?
                    .ok_or_else(|| {
                        "mail.username is set but no password: add mail.password_file or mail.password_env".to_string()
                    })?;
                    b = b.credentials(Credentials::new(user.clone(), password.expose().to_string()));
                }
                Ok(Mailer::Smtp {
                    transport: b.build(),
                    endpoint: ep,
                    username: cfg.username.clone(),
                    timeout: cfg.timeout_secs,
                })
            }
        }
    }

    /// The longest one send may take (the outbox leases a message this long).
    pub fn max_send_secs(&self) -> u64 {
        match self {
            Mailer::Smtp { timeout, .. } => timeout.saturating_mul(4).max(1),
            Mailer::File(..) => 60,
        }
    }

    /// Where mail goes, for messages.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { endpoint, .. } => format!(
                "smtp {}:{} (tls {})",
                endpoint.host,
                endpoint.port,
                endpoint.tls.as_str()
            ),
            Mailer::File(folder) => format!("files in {}", folder.display()),
        }
    }

    /// Send one formatted message to its envelope.
    pub async fn send(&self, from: &str, to: &[String], message: &[u8]) -> Result<(), SendError> {
        let bad = |advice: String| SendError {
            advice,
            whole_relay: false,
        };
        let from: Address = from
            .parse()
            .map_err(|e| bad(format!("sender {from:?} is not a mail address: {e}")))?;
        let to = to
            .iter()
            .map(|t| t.parse::<Address>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("a recipient is not a mail address: {e}")))?;
        let envelope = Envelope::new(Some(from), to).map_err(|e| bad(format!("no recipient: {e}")))?;
        match self {
            Mailer::File(folder) => {
                let mut name = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut name);
                let path = folder.join(format!("{}.eml", hex::encode(name)));
                let bytes = message.to_vec();
                let written = tokio::task::spawn_blocking(move || crate::private_files::write_new(&path, &bytes))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                // The file holds the message alone; its envelope was checked above.
                let _ = envelope;
                written.map_err(|e| SendError {
                    advice: format!("cannot write a mail file into {}: {e}", folder.display()),
                    whole_relay: true,
                })
            }
            Mailer::Smtp {
                transport,
                endpoint,
                username,
                timeout,
            } => {
                // lettre bounds the connect and each write, not the wait for
                // the server's replies: bound the whole conversation here.
                let limit = timeout.saturating_mul(4).max(1);
                match tokio::time::timeout(Duration::from_secs(limit), transport.send_raw(&envelope, message)).await {
                    Ok(r) => r
                        .map(|_| ())
                        .map_err(|e| advise(&e, endpoint, username.as_deref(), *timeout)),
                    Err(_) => Err(timed_out(endpoint, limit)),
                }
            }
        }
    }

    /// Open a connection and say hello (and log in): for `dirsync mail test`.
    pub async fn test_connection(&self) -> Result<(), SendError> {
        match self {
            Mailer::File(..) => Ok(()),
            Mailer::Smtp {
                transport,
                endpoint,
                username,
                timeout,
            } => {
                match tokio::time::timeout(Duration::from_secs((*timeout).max(1)), transport.test_connection()).await {
                    Err(_) => Err(timed_out(endpoint, *timeout)),
                    Ok(Ok(true)) => Ok(()),
                    Ok(Ok(false)) => Err(SendError {
                        advice: format!(
                            "{}:{} accepted the connection but did not answer NOOP; is it an SMTP server?",
                            endpoint.host, endpoint.port
                        ),
                        whole_relay: true,
                    }),
                    Ok(Err(e)) => Err(advise(&e, endpoint, username.as_deref(), *timeout)),
                }
            }
        }
    }
}

/// Advice when the relay did not answer in time.
fn timed_out(ep: &Endpoint, secs: u64) -> SendError {
    let at = format!("{}:{}", ep.host, ep.port);
    let advice = match (ep.tls, ep.port) {
        (TlsMode::Implicit, _) => format!(
            "{at} did not answer the TLS handshake within {secs} s (tls = \"implicit\"). Port 465 uses implicit \
             TLS; ports 587 and 25 use STARTTLS: set tls = \"starttls\", or use port 465"
        ),
        (_, 465) => {
            format!("no SMTP greeting from {at} within {secs} s: port 465 expects implicit TLS, set tls = \"implicit\"")
        }
        (mode, _) => format!(
            "{at} did not answer within {secs} s: check the host and port, the firewall, and the TLS mode \
             (tls = \"{}\"; a server that waits for a TLS handshake wants tls = \"implicit\")",
            mode.as_str()
        ),
    };
    SendError {
        advice,
        whole_relay: true,
    }
}

/// The error and all its causes, one line.
fn chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn io_kind(e: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = c.source();
    }
    None
}

/// Turn an SMTP error into a sentence that says what to change.
pub fn advise(e: &lettre::transport::smtp::Error, ep: &Endpoint, user: Option<&str>, timeout: u64) -> SendError {
    let detail = chain(e);
    let low = detail.to_lowercase();
    let at = format!("{}:{}", ep.host, ep.port);
    let relay = |advice: String| SendError {
        advice,
        whole_relay: true,
    };
    let kind = io_kind(e);
    let code = e.status().map(|c| c.to_string());
    if kind == Some(std::io::ErrorKind::ConnectionRefused) || low.contains("connection refused") {
        return relay(format!(
            "connection refused by {at}: nothing listens there. Check mail.host / mail.url and the port \
             (587 for STARTTLS, 465 for implicit TLS, 25 for a plain local relay), that the relay is running, \
             and that no firewall blocks it ({detail})"
        ));
    }
    if low.contains("failed to lookup")
        || low.contains("name or service not known")
        || low.contains("failed to resolve")
        || low.contains("no address")
    {
        return relay(format!(
            "cannot resolve the relay host {:?}: check mail.host / mail.url ({detail})",
            ep.host
        ));
    }
    let tls_garbage = low.contains("corrupt message")
        || low.contains("invalidcontenttype")
        || low.contains("wrong version number")
        || low.contains("invalid message")
        || low.contains("unexpected eof");
    if ep.tls == TlsMode::Implicit && (tls_garbage || e.is_timeout() || low.contains("timed out")) {
        return relay(format!(
            "{at} does not speak TLS from the first byte (tls = \"implicit\"). Port 465 uses implicit TLS; \
             ports 587 and 25 use STARTTLS: set tls = \"starttls\", or use port 465 ({detail})"
        ));
    }
    if (e.is_timeout() || low.contains("timed out")) && ep.port == 465 {
        return relay(format!(
            "no SMTP greeting from {at} within {timeout} s: port 465 expects implicit TLS, set tls = \"implicit\" \
             ({detail})"
        ));
    }
    if e.is_timeout() || low.contains("timed out") {
        return relay(format!(
            "{at} did not answer within {timeout} s: check the host and port, the firewall, and the TLS mode \
             (tls = \"{}\"; 465 = implicit, 587/25 = starttls) ({detail})",
            ep.tls.as_str()
        ));
    }
    if low.contains("starttls is not supported") {
        return relay(format!(
            "{at} does not offer STARTTLS: use its implicit-TLS port with tls = \"implicit\" (usually 465), \
             or for a relay on localhost only, tls = \"none\" ({detail})"
        ));
    }
    if low.contains("certificate") || low.contains("unknownissuer") || low.contains("unknown issuer") {
        return relay(format!(
            "the certificate of {at} is not trusted: if the relay uses a private CA, set mail.ca_file to that CA's \
             PEM file (or install it in the system store); check that mail.host is the name in the certificate \
             ({detail})"
        ));
    }
    if e.is_tls() || tls_garbage {
        return relay(format!(
            "TLS with {at} failed: check the TLS mode (tls = \"{}\"; 465 = implicit, 587/25 = starttls) ({detail})",
            ep.tls.as_str()
        ));
    }
    if low.contains("no compatible authentication mechanism") {
        return relay(format!(
            "{at} offers no login (AUTH) on this connection: many relays offer AUTH only over TLS — set \
             tls = \"starttls\" or \"implicit\" — or remove mail.username for a relay that needs no login \
             ({detail})"
        ));
    }
    if matches!(code.as_deref(), Some("535" | "534" | "530" | "538" | "454")) && user.is_some() {
        return relay(format!(
            "{at} refused the login of user {:?}: check mail.username and the password in mail.password_file / \
             mail.password_env ({detail})",
            user.unwrap_or_default()
        ));
    }
    if code.as_deref() == Some("530") {
        return relay(format!(
            "{at} requires a login: set mail.username and mail.password_file ({detail})"
        ));
    }
    if e.is_permanent() {
        return SendError {
            advice: format!(
                "{at} refused this message permanently: check the sender (mail.from is allowed to send through \
                 this relay?) and the recipient address ({detail})"
            ),
            whole_relay: false,
        };
    }
    if e.is_transient() {
        return SendError {
            advice: format!("{at} deferred this message (temporary error); it will be retried ({detail})"),
            whole_relay: false,
        };
    }
    relay(format!("sending through {at} failed: {detail}"))
}
