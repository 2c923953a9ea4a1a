//! Command-line arguments: parsed and checked into a `Config`, or help.

use std::ffi::OsString;

use super::{DEFAULT_BASE_DN, USERNAME_SPACE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Csv,
    Ldif,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Config {
    pub(super) rows: u64,
    pub(super) seed: u64,
    pub(super) out: Option<String>,
    pub(super) format: Format,
    pub(super) base_dn: String,
    pub(super) next_night: Option<f64>,
    pub(super) leaver_percent: f64,
}

#[cfg(test)]
impl Config {
    pub(super) fn new(rows: u64) -> Config {
        Config {
            rows,
            seed: 0,
            out: None,
            format: Format::Csv,
            base_dn: DEFAULT_BASE_DN.to_string(),
            next_night: None,
            leaver_percent: 0.0,
        }
    }
}

#[derive(Debug, PartialEq)]
pub(super) enum Command {
    Help,
    Run(Config),
}

pub(super) fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut rows = None;
    let mut seed = None;
    let mut out = None;
    let mut format = None;
    let mut base_dn = None;
    let mut next_night = None;
    let mut leaver_percent = None;

    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let arg = raw
            .into_string()
            .map_err(|a| format!("argument is not valid UTF-8: {}", a.to_string_lossy()))?;
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.to_string())),
            _ => (arg, None),
        };
        if !matches!(
            flag.as_str(),
            "--rows" | "--seed" | "--out" | "--format" | "--base" | "--next-night" | "--leaver-percent"
        ) {
            return Err(if flag.starts_with('-') {
                format!("unknown option '{flag}'")
            } else {
                format!("unexpected argument '{flag}'")
            });
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .into_string()
                .map_err(|_| format!("the value of {flag} is not valid UTF-8"))?,
        };
        match flag.as_str() {
            "--rows" => {
                let n = parse_u64(&value).ok_or_else(|| format!("--rows: '{value}' is not a whole number"))?;
                if n > USERNAME_SPACE {
                    return Err(format!("--rows: at most {USERNAME_SPACE} rows are supported"));
                }
                set_once(&mut rows, n, &flag)?;
            }
            "--seed" => {
                let s = parse_seed(&value)
                    .ok_or_else(|| format!("--seed: '{value}' is not a 64-bit unsigned number (decimal or 0x-hex)"))?;
                set_once(&mut seed, s, &flag)?;
            }
            "--out" => {
                if value.is_empty() {
                    return Err("--out: the file name is empty".to_string());
                }
                set_once(&mut out, value, &flag)?;
            }
            "--format" => {
                let f = match value.to_ascii_lowercase().as_str() {
                    "csv" => Format::Csv,
                    "ldif" => Format::Ldif,
                    _ => return Err(format!("--format: '{value}' is not one of csv, ldif")),
                };
                set_once(&mut format, f, &flag)?;
            }
            "--base" => {
                if !value.contains('=') || value.contains(['\r', '\n']) {
                    return Err(format!(
                        "--base: '{value}' does not look like a DN (e.g. {DEFAULT_BASE_DN})"
                    ));
                }
                set_once(&mut base_dn, value, &flag)?;
            }
            "--next-night" => set_once(&mut next_night, parse_percent(&value, &flag)?, &flag)?,
            _ => set_once(&mut leaver_percent, parse_percent(&value, &flag)?, &flag)?,
        }
    }

    let rows = rows.ok_or("--rows is required")?;
    Ok(Command::Run(Config {
        rows,
        seed: seed.unwrap_or(0),
        out: out.filter(|o| o != "-"),
        format: format.unwrap_or(Format::Csv),
        base_dn: base_dn.unwrap_or_else(|| DEFAULT_BASE_DN.to_string()),
        next_night,
        leaver_percent: leaver_percent.unwrap_or(0.0),
    }))
}

fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{flag} given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_u64(s: &str) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        Some(_) => None,
        None => parse_u64(s),
    }
}

fn parse_percent(s: &str, flag: &str) -> Result<f64, String> {
    let trimmed = s.strip_suffix('%').unwrap_or(s);
    match trimmed.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{flag}: '{s}' is not a percentage between 0 and 100")),
    }
}
