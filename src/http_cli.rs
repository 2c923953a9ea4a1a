//! `dirsync http …`: the console's users and script tokens, written to
//! `[http] users_file`. A password is read from the terminal (twice, without
//! echo) or from standard input when it is not a terminal — never from the
//! command line, where `ps` and shell history would keep it.

use dirsync::say;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use dirsync::config::Config;
use dirsync::http::users::{Role, Users};

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Sees runs, rows, results and metrics.
    Viewer,
    /// Also approves, rejects, uploads and downloads original files.
    Operator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
        }
    }
}

#[derive(Subcommand)]
pub enum HttpCommand {
    /// Add a console user, or set an existing user's password and role. The
    /// password is asked on the terminal, or read from stdin when piped.
    AddUser {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Where the results of this user's uploads are mailed.
        #[arg(long)]
        email: Option<String>,
    },
    /// Add (or replace) a bearer token for scripts using /api/v1; the token
    /// is printed once and kept only as a hash.
    AddToken {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Remove a user or token by name.
    Remove { name: String },
    /// List the users and tokens (names and roles).
    Users,
}

fn read_password(name: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: ")).map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing changed".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from stdin: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn run(config: &Config, cmd: HttpCommand) -> Result<(), String> {
    let path = config
        .http
        .as_ref()
        .and_then(|h| h.users_file.clone())
        .ok_or("set [http] users_file in the config first (e.g. users_file = \"http-users.toml\")")?;
    let mut users = Users::load(&path)?;
    match cmd {
        HttpCommand::AddUser { name, role, email } => {
            let password = read_password(&name)?;
            users.set_user(&name, role.into(), &password, email)?;
            users.save(&path)?;
            say!(
                "user {name} ({}) written to {}",
                Role::from(role).as_str(),
                path.display()
            );
        }
        HttpCommand::AddToken { name, role } => {
            let token = users.set_token(&name, role.into())?;
            users.save(&path)?;
            eprintln!(
                "token {name} ({}) written to {}; it is shown only now:",
                Role::from(role).as_str(),
                path.display()
            );
            say!("{token}");
        }
        HttpCommand::Remove { name } => {
            let before = users.users.len() + users.tokens.len();
            users.users.retain(|u| u.name != name);
            users.tokens.retain(|t| t.name != name);
            if users.users.len() + users.tokens.len() == before {
                return Err(format!("no user or token called {name:?} in {}", path.display()));
            }
            users.save(&path)?;
            say!("{name} removed from {}", path.display());
        }
        HttpCommand::Users => {
            for u in &users.users {
                say!("user  {:<24} {}", u.name, u.role.as_str());
            }
            for t in &users.tokens {
                say!("token {:<24} {}", t.name, t.role.as_str());
            }
        }
    }
    Ok(())
}

/// Run `dirsync http COMMAND`.
pub fn main(config: &Config, cmd: HttpCommand) -> ExitCode {
    match run(config, cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
