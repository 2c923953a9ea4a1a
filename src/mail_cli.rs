//! `dirsync mail ...` and the mail step after `check` / `apply`.

use dirsync::say;
use std::process::ExitCode;

use clap::Subcommand;

use dirsync::clock::now_unix;
use dirsync::config::Config;
use dirsync::mail::outbox::Pass;
use dirsync::mail::{self, MailConfig, Mailer};

#[derive(Subcommand)]
pub enum MailCommand {
    /// Send a test message through the configured transport; SMTP errors
    /// come back as advice (wrong TLS mode for the port, login refused,
    /// certificate not trusted, nothing listening).
    Test {
        /// The recipient.
        #[arg(long, value_name = "ADDRESS")]
        to: String,
    },
    /// Deliver every message in the outbox that is due now, without waiting
    /// for retry backoff (`send_at` and rate caps still hold).
    Flush {
        /// Also retry messages that were given up on after their last attempt.
        #[arg(long)]
        retry_failed: bool,
    },
    /// List the outbox, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub fn mail_config(config: &Config) -> Result<&MailConfig, String> {
    config.mail.as_ref().ok_or_else(|| {
        format!(
            "{} has no [mail] section; add one (see config/example/dirsync.toml)",
            config.path.display()
        )
    })
}

/// Refuse `--mail-to` before the run when mail is not configured.
pub fn precheck(config: &Config, mail_to: Option<&str>) -> Result<(), String> {
    match mail_to {
        Some(to) => {
            mail_config(config)?;
            to.parse::<lettre::message::Mailbox>()
                .map(|_| ())
                .map_err(|e| format!("--mail-to {to:?} is not a mail address: {e}"))
        }
        None => Ok(()),
    }
}

fn print_pass(pass: &Pass) {
    if pass.sent > 0 {
        say!("mail: {} sent", pass.sent);
    }
    if pass.retrying > 0 || pass.relay_down {
        say!(
            "mail: {} not sent yet, kept in the outbox for retry (`dirsync mail flush` sends now)",
            pass.retrying + pass.waiting
        );
    } else if pass.waiting > 0 {
        say!("mail: {} waiting (send_at or rate cap)", pass.waiting);
    }
    if pass.failed > 0 {
        say!("mail: {} given up; see `dirsync mail list`", pass.failed);
    }
    for e in &pass.errors {
        eprintln!("mail error: {e}");
    }
}

/// After a run queued mails: one delivery pass, now.
pub async fn deliver_now(cfg: &MailConfig, outbox: &mail::Outbox) {
    let mailer = match Mailer::from_config(cfg) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mail error: {e}; the mails stay in the outbox");
            return;
        }
    };
    match outbox.deliver_due(&mailer, mail::deliver_options(cfg, false)).await {
        Ok(pass) => print_pass(&pass),
        Err(e) => eprintln!("mail error: {e}; the mails stay in the outbox"),
    }
}

pub async fn run(config: &Config, command: MailCommand) -> ExitCode {
    match run_inner(config, command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(config: &Config, command: MailCommand) -> Result<ExitCode, String> {
    let cfg = mail_config(config)?;
    match command {
        MailCommand::Test { to } => {
            let mailer = Mailer::from_config(cfg)?;
            let m = mail::compose::test_mail(cfg, &to, now_unix())?;
            say!("testing {}", mailer.describe());
            let result = match mailer.test_connection().await {
                Ok(()) => mailer.send(&m.sender, &m.recipients, &m.message).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    say!("sent a test message to {to} via {}", mailer.describe());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        MailCommand::Flush { retry_failed } => {
            let outbox = mail::open_outbox(cfg).await?;
            if retry_failed {
                let n = outbox.retry_failed(now_unix()).await.map_err(|e| e.to_string())?;
                say!("mail: {n} given-up message(s) queued again");
            }
            let mailer = Mailer::from_config(cfg)?;
            let pass = outbox
                .deliver_due(&mailer, mail::deliver_options(cfg, true))
                .await
                .map_err(|e| e.to_string())?;
            print_pass(&pass);
            if pass.sent == 0 && pass.retrying == 0 && pass.failed == 0 && pass.waiting == 0 {
                say!("mail: nothing to send");
            }
            Ok(if pass.retrying > 0 || pass.failed > 0 || pass.relay_down {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        MailCommand::List { limit } => {
            let outbox = mail::open_outbox(cfg).await?;
            let entries = outbox.list(limit).await.map_err(|e| e.to_string())?;
            let now = now_unix();
            for e in entries {
                let when = match e.state.as_str() {
                    "pending" if e.not_before > now => format!("held until {}", fmt_time(e.not_before)),
                    "pending" if e.next_attempt_at > now => format!("retry at {}", fmt_time(e.next_attempt_at)),
                    "sent" => format!("at {}", e.sent_at.map(fmt_time).unwrap_or_default()),
                    _ => String::new(),
                };
                say!(
                    "{}\t{}\t{}\t{} {}\tattempts {}\t<{}>\t{}\t{}",
                    e.run_id,
                    e.kind,
                    e.recipients.join(","),
                    e.state,
                    when,
                    e.attempts,
                    e.id,
                    e.subject,
                    e.last_error.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}
