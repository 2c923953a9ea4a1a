//! The command line's words: commands, their arguments and flags (clap).
//! `main.rs` runs them; `cli_docs.rs` makes completions and man pages of them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use dirsync::core::Class;

use crate::{activation_cli, http_cli, mail_cli};

/// dirsync: sync HR CSV exports into a directory (LDAP) or a database (SQL),
/// safely and unattended.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Cli {
    /// The service config (dirsync.toml).
    #[arg(
        long,
        global = true,
        env = "DIRSYNC_CONFIG",
        default_value = "/etc/dirsync/dirsync.toml"
    )]
    pub(crate) config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Validate and preview a file: parse, read the target, plan, write the
    /// results file. Writes nothing to the target.
    Check(RunArgs),
    /// Like `check`, then apply the plan to the target.
    Apply(RunArgs),
    /// Print a template CSV for a policy: its headers in order and one example row.
    Template {
        /// The policy (may be left out when the config has one).
        #[arg(long)]
        policy: Option<String>,
        /// Write a template workbook (.xlsx) to FILE instead of CSV to stdout.
        #[arg(long, value_name = "FILE")]
        xlsx: Option<std::path::PathBuf>,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Mail commands: test the relay, deliver the outbox, list it.
    Mail {
        #[command(subcommand)]
        command: mail_cli::MailCommand,
    },
    /// The web console's users and script tokens (`[http] users_file`).
    Http {
        #[command(subcommand)]
        command: http_cli::HttpCommand,
    },
    /// Activation links (`[passwords] deliver = "activation"`): resend one.
    Activation {
        #[command(subcommand)]
        command: activation_cli::ActivationCommand,
    },
    /// SFTP inbox commands.
    Inbox {
        #[command(subcommand)]
        command: InboxCommand,
    },
    /// Run as a service: watch every [[inbox]] folder, run each complete file,
    /// resume unfinished runs. SIGTERM/SIGINT stop cleanly; SIGHUP reloads.
    Serve,
    /// Runs from the journal (command line and daemon alike): list, show,
    /// approve or reject held changes, resume an unfinished run.
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Print the completion script for a shell (the package installs those
    /// for bash, zsh and fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (dirsync.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Subcommand)]
pub(crate) enum InboxCommand {
    /// Connect to an SFTP inbox (checking its pinned host key), list it and
    /// say what would be taken.
    Test {
        /// The inbox (`name` of an [[sftp_inbox]]).
        name: String,
    },
    /// Take complete files from an SFTP inbox, apply them, upload their
    /// results and archive them; poll until stopped (SIGTERM, Ctrl-C).
    Poll {
        /// The inbox (`name` of an [[sftp_inbox]]).
        name: String,
        /// Take what is complete now and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum RunsCommand {
    /// One run, with its held changes (key, change, diff), rejected and
    /// failed rows, and the decisions on it.
    Show {
        /// The run id (first column of `dirsync runs`).
        id: i64,
    },
    /// Apply exactly the held changes `runs show` lists: the target is read
    /// again and the file planned again; a change that is still the same is
    /// applied, one no longer needed is reported as such, and when the plan
    /// changed in a way not shown the approval is refused.
    Approve {
        id: i64,
        /// Only these classes (repeat for several); default: every held class.
        #[arg(long, value_enum)]
        class: Vec<ClassArg>,
        /// Who approves (recorded in the journal); default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Close a run awaiting approval without writing its held changes.
    Reject {
        id: i64,
        /// Who rejects (recorded in the journal); default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Resume an unfinished run (killed, or stopped by a target failure).
    Resume { id: i64 },
    /// The daemons sharing this journal (`[service] journal`) and what each
    /// holds now: runs, targets, files being claimed.
    Daemons,
}

/// A change class, as `--class` takes it.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ClassArg {
    Adds,
    Updates,
    Leavers,
    Rejoins,
    Deletes,
    #[value(name = "password_resets")]
    PasswordResets,
}

impl From<ClassArg> for Class {
    fn from(c: ClassArg) -> Class {
        match c {
            ClassArg::Adds => Class::Adds,
            ClassArg::Updates => Class::Updates,
            ClassArg::Leavers => Class::Leavers,
            ClassArg::Rejoins => Class::Rejoins,
            ClassArg::Deletes => Class::Deletes,
            ClassArg::PasswordResets => Class::PasswordResets,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate the config and its policies; print what would run.
    Check,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The CSV file.
    pub(crate) file: PathBuf,
    /// The policy (may be left out when the config has one).
    #[arg(long)]
    pub(crate) policy: Option<String>,
    /// Where to write the results file (default: beside the input as NAME.results.csv).
    #[arg(long)]
    pub(crate) results: Option<PathBuf>,
    /// Apply change classes that exceed their safety limits (after checking the file).
    #[arg(long)]
    pub(crate) allow_over_limit: bool,
    /// Mail the results to this address (needs a [mail] section). Credentials
    /// mails to new users go out whenever [mail] is configured.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) mail_to: Option<String>,
}
