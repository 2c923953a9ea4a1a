//! `dirsync activation resend KEY [--policy P]`: mail an account a new
//! activation link (voiding its old one) when the first was lost, expired
//! or went to a wrong address that has since been fixed. The same call as
//! the console's "Resend link" button; the mail is queued in the outbox and
//! delivered at once.

use dirsync::say;
use std::process::ExitCode;

use clap::Subcommand;

use dirsync::config::Config;
use dirsync::sync::{self, MailOut};

use crate::mail_cli;

#[derive(Subcommand)]
pub enum ActivationCommand {
    /// Mail KEY a new activation link and void the old one (an account that
    /// has set its password already gets none).
    Resend {
        /// The account's key (username).
        key: String,
        /// The policy (may be left out when the config has one).
        #[arg(long)]
        policy: Option<String>,
    },
}

pub async fn run(config: Config, command: ActivationCommand) -> ExitCode {
    let ActivationCommand::Resend { key, policy } = command;
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let lp = match config.policy(policy.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let Some(cfg) = &config.mail else {
        return fail(&"there is no [mail] section: an activation link cannot be mailed");
    };
    let journal = match sync::open_journal(&config).await {
        Ok(j) => j,
        Err(e) => return fail(&e),
    };
    let outbox = match dirsync::mail::open_outbox(cfg).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    fn nothing() {}
    let mail = MailOut {
        cfg,
        outbox: &outbox,
        wake: &nothing,
    };
    match sync::activation::resend(&config, &journal, Some(mail), &lp.name, &key).await {
        Ok(r) => {
            say!(
                "activation: a new link for {} mailed to {} (valid until {}); the old link no longer works",
                r.key,
                r.email,
                dirsync::clock::timestamp(r.expires.saturating_mul(1000))
            );
            mail_cli::deliver_now(cfg, &outbox).await;
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
