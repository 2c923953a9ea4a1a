//! Documentation generated from the clap definitions, so it cannot drift from
//! the command line: shell completions (`dirsync completions SHELL`) and man
//! pages (`dirsync manpages DIR`, hidden; `scripts/package` calls it).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// The completion script of `cmd` for `shell`.
pub fn completions(mut cmd: Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// Writes `NAME.1` and one page per visible subcommand, nested ones included
/// (`NAME-config-check.1`), into `dir`; returns the paths written.
pub fn manpages(cmd: Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Propagates names: a subcommand's display name becomes "dirsync-config-check".
    cmd.build();
    let mut written = Vec::new();
    let root = cmd.get_name().to_owned();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    let see_also: Vec<String> = pages[1..].iter().map(page_name).collect();
    for (i, page) in pages.into_iter().enumerate() {
        let man = clap_mangen::Man::new(page.clone()).manual("dirsync manual");
        let path = dir.join(man.get_filename());
        let mut out = Vec::new();
        man.render(&mut out)?;
        if i == 0 {
            out.extend_from_slice(ROOT_SECTIONS.as_bytes());
            // .nh: no hyphenation inside the page names.
            out.extend_from_slice(b".SH \"SEE ALSO\"\n.nh\n");
            let refs: Vec<String> = see_also
                .iter()
                .map(|n| format!("\\fB{}\\fR(1)", n.replace('-', "\\-")))
                .collect();
            writeln!(out, "{},", refs.join(", "))?;
            out.extend_from_slice(b"\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)\n");
        } else {
            writeln!(out, ".SH \"SEE ALSO\"\n\\fB{root}\\fR(1)")?;
        }
        std::fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
}

/// `cmd` first, then its visible subcommands depth first.
fn collect(cmd: &Command, pages: &mut Vec<Command>) {
    pages.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages);
    }
}

fn page_name(cmd: &Command) -> String {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name()).to_owned()
}

/// What `dirsync(1)` says beyond the options: files, environment, exit codes.
const ROOT_SECTIONS: &str = r#".SH FILES
.TP
\fB/etc/dirsync/dirsync.toml\fR
The service config: targets, policies, drop folders, mail. Every command reads it unless \fB\-\-config\fR or \fBDIRSYNC_CONFIG\fR names another. Check it with \fBdirsync config check\fR after every change.
.TP
\fB/etc/dirsync/policies/\fR
Policy files: how the columns of a file map onto a target, sync rules, safety limits.
.TP
\fB/var/lib/dirsync/\fR
The packaged config's state folder: the journal (journal.db and its key), the mail outbox key, the embedded SQLite target (directory.db) and mails written as .eml files (mail/). Run commands as the service user (\fBrunuser \-u dirsync \-\- dirsync ...\fR) so that what they create stays readable by the service.
.TP
\fB/srv/dirsync/inbox/\fR
The packaged config's drop folder; dirsync files each run under processing/, archive/YYYY\-MM\-DD/ or rejected/.
.TP
\fB/usr/share/dirsync/templates/\fR
The built-in mail templates, to copy and adapt (a policy's [mail.templates]).
.TP
\fB/usr/share/doc/dirsync/\fR
README.md, the guides in docs/ and commented example configs for every target in examples/.
.SH ENVIRONMENT
.TP
\fBDIRSYNC_CONFIG\fR
The config file when \fB\-\-config\fR is not given.
.TP
\fBDIRSYNC_LOG\fR
Log filter, e.g. \fBdebug\fR or \fBdirsync=debug\fR. Logs go to stderr (the journal under systemd: \fBjournalctl \-u dirsync\fR).
.SH "EXIT STATUS"
.TP
\fB0\fR
Every row accepted and applied (or previewed).
.TP
\fB1\fR
The run finished, but some rows were rejected, failed, or held back by a safety limit.
.TP
\fB2\fR
The file was rejected as a whole, or a config or target error.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("tool")
            .version("1.0")
            .subcommand(Command::new("run").about("Run it."))
            .subcommand(Command::new("config").subcommand(Command::new("check").about("Check the config.")))
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn one_page_per_visible_subcommand_with_root_sections() {
        let dir = tempfile::tempdir().expect("tempdir"); // ok: test
        let written = manpages(cli(), dir.path()).expect("manpages"); // ok: test
        let mut names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        assert_eq!(names, ["tool-config-check.1", "tool-config.1", "tool-run.1", "tool.1"]);
        let root = std::fs::read_to_string(dir.path().join("tool.1")).expect("read"); // ok: test
        assert!(root.contains(".SH FILES"), "{root}");
        assert!(root.contains("\\fBtool\\-config\\-check\\fR(1)"), "{root}");
        let check = std::fs::read_to_string(dir.path().join("tool-config-check.1")).expect("read"); // ok: test
        assert!(check.contains("Check the config."), "{check}");
        assert!(check.contains(".SH \"SEE ALSO\"\n\\fBtool\\fR(1)"), "{check}");
    }

    #[test]
    fn completions_name_the_subcommands() {
        let bash = String::from_utf8(completions(cli(), Shell::Bash)).expect("utf-8"); // ok: test
        assert!(bash.contains("complete -F _tool"), "{bash}");
        assert!(bash.contains("tool__subcmd__config__subcmd__check"), "{bash}");
    }
}
