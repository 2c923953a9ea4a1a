//! Mail templates (minijinja, Jinja syntax): the built-in defaults from
//! `config/templates/`, overridable per policy. Templates are checked when
//! the config loads — syntax and variable names — by rendering them with a
//! sample context, so a typo fails `dirsync config check`, not a run.

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::config::PolicyMail;

const RESULTS_TEXT: &str = include_str!("../../config/templates/results.txt.j2");
const RESULTS_HTML: &str = include_str!("../../config/templates/results.html.j2");
const CREDENTIALS_TEXT: &str = include_str!("../../config/templates/credentials.txt.j2");
const CREDENTIALS_HTML: &str = include_str!("../../config/templates/credentials.html.j2");
const ACTIVATION_TEXT: &str = include_str!("../../config/templates/activation.txt.j2");
const ACTIVATION_HTML: &str = include_str!("../../config/templates/activation.html.j2");
const RESULTS_SUBJECT: &str = "{{ subject }}";
const ACTIVATION_SUBJECT: &str = "Your new account: {{ username }}: choose your password";
const CREDENTIALS_SUBJECT: &str = "Your new account: {{ username }}";

/// A template problem: the file (or `built-in`) and what is wrong, with its line.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub file: PathBuf,
    pub message: String,
}

/// A rendered message: subject, text body, optional HTML alternative.
#[derive(Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The compiled templates of one policy.
pub struct Templates {
    env: Environment<'static>,
    origins: Vec<(&'static str, PathBuf)>,
    results_html: bool,
    credentials_html: bool,
    activation_html: bool,
}

/// Variables of the results templates.
#[derive(Debug, Clone, Serialize)]
pub struct ResultsContext {
    pub file: String,
    pub policy: String,
    pub run_id: String,
    pub preview: bool,
    pub rejected: bool,
    pub reason: String,
    pub target_error: String,
    pub changes: Vec<Count>,
    pub verdicts: Vec<Count>,
    pub held: Vec<String>,
    pub r#override: String,
    pub warnings: Vec<String>,
    pub results_file: String,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub name: String,
    pub label: String,
    pub count: usize,
}

/// Variables of the activation templates. Holds the link: no `Debug`.
#[derive(Clone, Serialize)]
pub struct ActivationContext {
    /// A new account (false: an existing account's user sets a new password).
    pub created: bool,
    pub username: String,
    pub email: String,
    /// `{public_url}/activate/TOKEN`.
    pub link: String,
    /// When the link stops working, for people.
    pub expires: String,
    pub valid_hours: u32,
    pub policy: String,
    pub run_id: String,
}

/// Variables of the credentials templates. Holds the password: no `Debug`.
#[derive(Clone, Serialize)]
pub struct CredentialsContext {
    pub username: String,
    pub email: String,
    pub password: String,
    pub must_change: bool,
    /// A new account (false: an existing account's password was reset).
    pub created: bool,
    pub policy: String,
    pub run_id: String,
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Result<Templates, Vec<TemplateError>> {
        Templates::load(&PolicyMail::default(), Path::new("."))
    }

    /// The templates of a policy: its `[mail.templates]` files (relative to
    /// `policy_dir`) over the built-ins. Checked by rendering sample contexts.
    pub fn load(pm: &PolicyMail, policy_dir: &Path) -> Result<Templates, Vec<TemplateError>> {
        let t = &pm.templates;
        let builtin = PathBuf::from("built-in template");
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut errors = Vec::new();
        let mut origins = Vec::new();
        let results_html = t.results_html.is_some() || t.results_text.is_none();
        let credentials_html = t.credentials_html.is_some() || t.credentials_text.is_none();
        let activation_html = t.activation_html.is_some() || t.activation_text.is_none();
        let files: [(&'static str, &Option<PathBuf>, &'static str, bool); 6] = [
            ("results.txt", &t.results_text, RESULTS_TEXT, true),
            ("results.html", &t.results_html, RESULTS_HTML, results_html),
            ("credentials.txt", &t.credentials_text, CREDENTIALS_TEXT, true),
            (
                "credentials.html",
                &t.credentials_html,
                CREDENTIALS_HTML,
                credentials_html,
            ),
            ("activation.txt", &t.activation_text, ACTIVATION_TEXT, true),
            ("activation.html", &t.activation_html, ACTIVATION_HTML, activation_html),
        ];
        for (name, file, default, wanted) in files {
            if !wanted {
                continue;
            }
            let (origin, source) = match file {
                Some(f) => {
                    let path = crate::paths::resolve(policy_dir, f);
                    match std::fs::read_to_string(&path) {
                        Ok(s) => (path, s),
                        Err(e) => {
                            errors.push(TemplateError {
                                message: format!("cannot read mail template: {e}"),
                                file: path,
                            });
                            continue;
                        }
                    }
                }
                None => (builtin.join(name), default.to_string()),
            };
            if let Err(e) = env.add_template_owned(name, source) {
                errors.push(template_error(&origin, &e));
                continue;
            }
            origins.push((name, origin));
        }
        let subjects: [(&'static str, &Option<String>, &'static str, &'static str); 3] = [
            (
                "results.subject",
                &t.results_subject,
                RESULTS_SUBJECT,
                "results_subject",
            ),
            (
                "credentials.subject",
                &t.credentials_subject,
                CREDENTIALS_SUBJECT,
                "credentials_subject",
            ),
            (
                "activation.subject",
                &t.activation_subject,
                ACTIVATION_SUBJECT,
                "activation_subject",
            ),
        ];
        for (name, custom, default, key) in subjects {
            let origin = PathBuf::from(format!("[mail.templates] {key}"));
            let source = custom.clone().unwrap_or_else(|| default.to_string());
            if let Err(e) = env.add_template_owned(name, source) {
                errors.push(template_error(&origin, &e));
                continue;
            }
            origins.push((name, origin));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let templates = Templates {
            env,
            origins,
            results_html,
            credentials_html,
            activation_html,
        };
        templates.check()?;
        Ok(templates)
    }

    /// Render every template with sample values: catches unknown variables
    /// and filters, which minijinja only finds at render time.
    fn check(&self) -> Result<(), Vec<TemplateError>> {
        let mut errors = Vec::new();
        let results = ResultsContext::sample();
        let creds = CredentialsContext::sample();
        let activation = ActivationContext::sample();
        for (name, origin) in &self.origins {
            let r = match self.env.get_template(name) {
                Ok(t) if name.starts_with("results") => t.render(&results),
                Ok(t) if name.starts_with("activation") => t.render(&activation),
                Ok(t) => t.render(&creds),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                errors.push(template_error(origin, &e));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn render(&self, prefix: &str, html: bool, ctx: minijinja::Value) -> Result<Rendered, String> {
        let one = |name: String| -> Result<String, String> {
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| format!("mail template {name}: {e}"))
        };
        let subject = one(format!("{prefix}.subject"))?;
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: one(format!("{prefix}.txt"))?,
            html: if html {
                Some(one(format!("{prefix}.html"))?)
            } else {
                None
            },
        })
    }

    pub fn render_results(&self, ctx: &ResultsContext) -> Result<Rendered, String> {
        self.render("results", self.results_html, minijinja::Value::from_serialize(ctx))
    }

    pub fn render_credentials(&self, ctx: &CredentialsContext) -> Result<Rendered, String> {
        self.render(
            "credentials",
            self.credentials_html,
            minijinja::Value::from_serialize(ctx),
        )
    }

    pub fn render_activation(&self, ctx: &ActivationContext) -> Result<Rendered, String> {
        self.render(
            "activation",
            self.activation_html,
            minijinja::Value::from_serialize(ctx),
        )
    }
}

fn template_error(origin: &Path, e: &minijinja::Error) -> TemplateError {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let message = match e.line() {
        Some(line) => format!("line {line}: mail template error: {}{detail}", e.kind()),
        None => format!("mail template error: {}{detail}", e.kind()),
    };
    TemplateError {
        file: origin.to_path_buf(),
        message,
    }
}

impl ResultsContext {
    fn sample() -> ResultsContext {
        ResultsContext {
            file: "hr.csv".into(),
            policy: "staff".into(),
            run_id: "sample".into(),
            preview: true,
            rejected: true,
            reason: "bad header".into(),
            target_error: "unreachable".into(),
            changes: vec![Count {
                name: "new".into(),
                label: "new".into(),
                count: 1,
            }],
            verdicts: vec![Count {
                name: "done".into(),
                label: "done".into(),
                count: 1,
            }],
            held: vec!["1 adds exceed limits.adds".into()],
            r#override: "--allow-over-limit".into(),
            warnings: vec!["unknown column".into()],
            results_file: "hr.results.csv".into(),
            subject: "hr.csv: 1 new".into(),
        }
    }
}

impl ActivationContext {
    fn sample() -> ActivationContext {
        ActivationContext {
            created: true,
            username: "jsmith".into(),
            email: "jsmith@example.org".into(),
            link: "https://dirsync.example.org/activate/sample".into(),
            expires: "2026-01-01 08:00 UTC".into(),
            valid_hours: 72,
            policy: "staff".into(),
            run_id: "sample".into(),
        }
    }
}

impl CredentialsContext {
    fn sample() -> CredentialsContext {
        CredentialsContext {
            username: "jsmith".into(),
            email: "jsmith@example.org".into(),
            password: "sample".into(),
            must_change: true,
            created: true,
            policy: "staff".into(),
            run_id: "sample".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_compile_and_render() {
        let t = Templates::builtin().unwrap_or_else(|e| panic!("{:?}", e.first().map(|e| &e.message)));
        let mut ctx = ResultsContext::sample();
        ctx.rejected = false;
        let r = t.render_results(&ctx).unwrap(); // ok: test
        assert!(r.text.contains("NOTHING WAS WRITTEN"), "{}", r.text);
        assert!(r.text.contains("--allow-over-limit"), "{}", r.text);
        assert!(r.html.is_some());
        let r = t.render_credentials(&CredentialsContext::sample()).unwrap(); // ok: test
        assert!(r.text.contains("change this password the next time"), "{}", r.text);
        assert_eq!(r.subject, "Your new account: jsmith");
    }

    #[test]
    fn syntax_error_has_file_and_line() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        std::fs::write(dir.path().join("c.txt"), "Hello\n\n{% if password %}\nno end").unwrap(); // ok: test
        let mut pm = PolicyMail::default();
        pm.templates.credentials_text = Some("c.txt".into());
        let errs = Templates::load(&pm, dir.path()).err().unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].file, dir.path().join("c.txt"));
        assert!(errs[0].message.starts_with("line "), "{}", errs[0].message);
    }

    #[test]
    fn unknown_variable_is_an_error() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        std::fs::write(dir.path().join("c.txt"), "Hi {{ usrname }}").unwrap(); // ok: test
        let mut pm = PolicyMail::default();
        pm.templates.credentials_text = Some("c.txt".into());
        let errs = Templates::load(&pm, dir.path()).err().unwrap_or_default();
        assert_eq!(
            errs.len(),
            1,
            "{:?}",
            errs.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
        assert!(errs[0].message.contains("line 1"), "{}", errs[0].message);
    }
}
