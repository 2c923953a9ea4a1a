//! The `dirsync` command line.

mod activation_cli;
mod cli_args;
mod cli_docs;
mod cli_run;
mod http_cli;
mod inbox_cmd;

use dirsync::say;
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli_args::{Cli, Command, ConfigCommand, InboxCommand, LogFormat, RunArgs, RunsCommand};

use dirsync::config::Config;
use dirsync::core::Class;
use dirsync::runs;
use dirsync::sync::open_backend;

/// mimalloc instead of glibc's malloc: a run makes millions of small
/// allocations (rows, LDAP messages), and glibc's allocator was a third of
/// an LDAP snapshot's CPU (BENCHMARKS.md, issue 16).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod mail_cli;

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIRSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal; journald and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!("{} problem(s) in the configuration", errors.len());
        ExitCode::from(2)
    })
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Completions { shell } => {
            let script = cli_docs::completions(Cli::command(), shell);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(2),
            }
        }
        Command::Manpages { dir } => match cli_docs::manpages(Cli::command(), &dir) {
            Ok(pages) => {
                for p in pages {
                    say!("{}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write the man pages into {}: {e}", dir.display());
                ExitCode::from(2)
            }
        },
        Command::Check(args) => run_command(&cli.config, args, false).await,
        Command::Apply(args) => run_command(&cli.config, args, true).await,
        Command::Template { policy, xlsx } => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let lp = match config.policy(policy.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let (headers, example) = lp.policy.template();
            if let Some(path) = xlsx {
                return match template_workbook(&headers, &example).and_then(|mut b| b.save(&path)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", path.display());
                        ExitCode::from(2)
                    }
                };
            }
            let mut w = csv::Writer::from_writer(std::io::stdout());
            if w.write_record(&headers)
                .and_then(|_| w.write_record(&example))
                .and_then(|_| w.flush().map_err(Into::into))
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Command::Inbox { command } => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match command {
                InboxCommand::Test { name } => inbox_cmd::test(&config, &name).await,
                InboxCommand::Poll { name, once } => inbox_cmd::poll(config, &name, once).await,
            }
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            say!("config {} is valid", config.path.display());
            let others = dirsync::config::shared_journal::other_configs(&config);
            if let Some(w) = dirsync::config::shared_journal::warning(&config, &others) {
                eprintln!("warning: {w}");
            }
            for (name, t) in &config.targets {
                say!("target {name}: {}", t.describe());
            }
            if let Some(m) = &config.mail {
                say!("mail: {}", m.describe());
            }
            if let Some(h) = &config.http {
                let scheme = if h.tls().is_some() { "https" } else { "http" };
                let users = h
                    .users_file
                    .as_ref()
                    .map(|u| format!("users in {}", u.display()))
                    .unwrap_or_else(|| "no users_file: only the probes and metrics answer".into());
                say!(
                    "http: {scheme}://{}/ (console; {users}; /healthz, /readyz, /metrics)",
                    h.listen
                );
            }
            for i in &config.sftp_inboxes {
                say!("sftp inbox {}: {} → policy {}", i.name, i.sftp, i.policy);
            }
            for (name, lp) in &config.policies {
                let p = &lp.policy;
                say!(
                    "policy {name} ({}): target {}, absent = {:?}, fields: {}",
                    lp.path.display(),
                    lp.target,
                    p.sync.absent,
                    p.attributes.join(", ")
                );
                let l = &p.lifecycle;
                say!(
                    "policy {name}: start and end dates read as {} in {}; accounts created {} day(s) before the start",
                    l.date_formats.join(" or "),
                    l.time_zone.name(),
                    l.create_days_before_start
                );
            }
            for i in &config.inboxes {
                say!(
                    "inbox {}: folder {}, policy {}, {}",
                    i.name,
                    i.folder.as_deref().map(|f| f.display().to_string()).unwrap_or_default(),
                    i.policy,
                    if i.marker {
                        "takes a file once NAME.done is beside it".to_string()
                    } else {
                        format!("takes a file when renamed in or settled for {} s", i.settle_seconds)
                    }
                );
            }
            say!(
                "journal: {}",
                dirsync::backend::sql::redact_url(&config.service.journal_url())
            );
            // Connect to each policy's target and check its mapping against
            // the real schema (tables, columns, types).
            let mut failed = false;
            for (name, lp) in &config.policies {
                match open_backend(&config, lp).await.map_err(|e| e.to_string()) {
                    Ok(b) => match b.health().await {
                        Ok(()) => say!("policy {name}: target {} matches the mapping", lp.target),
                        Err(e) => {
                            eprintln!("error: policy {name}: {e}");
                            failed = true;
                        }
                    },
                    Err(e) => {
                        eprintln!("error: policy {name}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Command::Activation { command } => match load_config(&cli.config) {
            Ok(config) => activation_cli::run(config, command).await,
            Err(code) => code,
        },
        Command::Http { command } => match load_config(&cli.config) {
            Ok(config) => http_cli::main(&config, command),
            Err(code) => code,
        },
        Command::Mail { command } => match load_config(&cli.config) {
            Ok(config) => mail_cli::run(&config, command).await,
            Err(code) => code,
        },
        Command::Serve => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match dirsync::daemon::run(config, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Runs { command, limit } => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = match command {
                None => runs::list(&config, limit).await,
                Some(RunsCommand::Show { id }) => runs::show(&config, id).await,
                Some(RunsCommand::Daemons) => runs::daemons(&config).await,
                Some(RunsCommand::Approve { id, class, by }) => {
                    let classes: Vec<Class> = class.into_iter().map(Class::from).collect();
                    let by = by.unwrap_or_else(cli_run::default_operator);
                    return cli_run::approve(config, id, &classes, &by).await;
                }
                Some(RunsCommand::Reject { id, by }) => {
                    let by = by.unwrap_or_else(cli_run::default_operator);
                    return cli_run::reject(config, id, &by).await;
                }
                Some(RunsCommand::Resume { id }) => return cli_run::resume(config, id).await,
            };
            match result {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run_command(config_path: &Path, args: RunArgs, apply: bool) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let req = cli_run::RunRequest {
        file: args.file,
        policy: args.policy,
        results: args.results,
        allow_over_limit: args.allow_over_limit,
        mail_to: args.mail_to,
    };
    cli_run::check_or_apply(config, req, apply).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One process-wide TLS provider (ring). When both of rustls' providers
    // are compiled in (the browser test's dev-dependency brings aws-lc-rs
    // into test builds), rustls cannot choose by itself and ldap3's TLS
    // connections panicked. Err only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The service logs what it does; one-shot commands only what goes wrong.
    let level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    init_logging(cli.log_format, level);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // The command runs on a runtime worker, beside the connections' own
    // tasks: polled from the main thread, every reply a connection hands
    // over woke a thread across cores (an LDAP load spent a fifth of its
    // CPU switching threads).
    let code = rt.block_on(async {
        match tokio::spawn(run(cli)).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: the command stopped: {e}");
                ExitCode::from(2)
            }
        }
    });
    // The command is done: whatever a library left running (a pool's
    // maintenance task, a connection's worker) gets a moment, not forever.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// `dirsync template --xlsx`: the headers in bold, one example row, every
/// cell text (so an employee number keeps its leading zeros).
fn template_workbook(
    headers: &[String],
    example: &[String],
) -> Result<rust_xlsxwriter::Workbook, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    let sheet = book.add_worksheet().set_name("Users")?;
    for (c, h) in headers.iter().enumerate() {
        let c = c as u16;
        sheet.write_string_with_format(0, c, h, &bold)?;
        sheet.set_column_format(c, &text)?;
        sheet.set_column_width(c, (h.chars().count() + 4).max(12) as f64)?;
        if let Some(v) = example.get(c as usize) {
            sheet.write_string_with_format(1, c, v, &text)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(book)
}
