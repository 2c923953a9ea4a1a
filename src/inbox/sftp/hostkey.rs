//! Host key pinning: the server's key must be the one in the config (its
//! SHA256 fingerprint) or in the named known_hosts file. An unknown or
//! changed key refuses the connection; nothing is ever trusted on first use.

use russh::keys::{HashAlg, PublicKey};

use super::config::HostKeyPin;
use super::error::SftpError;

/// `SHA256:...` as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Check the key the server presented against the pin.
pub fn check_host_key(pin: &HostKeyPin, host: &str, port: u16, key: &PublicKey) -> Result<(), SftpError> {
    let presented = fingerprint(key);
    let algo = key.algorithm().to_string();
    let keyscan = format!("`ssh-keyscan -p {port} {host} | ssh-keygen -lf -`");
    match pin {
        HostKeyPin::Fingerprint(pinned) => {
            if &presented == pinned {
                Ok(())
            } else {
                Err(SftpError::HostKey(format!(
                    "host key of {host}:{port} does not match the pinned host_key_fingerprint: the server presented \
                     {algo} {presented}, the config pins {pinned}; connection refused. If the server's key was \
                     changed on purpose, confirm the new fingerprint with its administrator (or run {keyscan} on a \
                     trusted network) and update host_key_fingerprint; otherwise someone may be intercepting the \
                     connection"
                )))
            }
        }
        HostKeyPin::KnownHosts(path) => {
            if let Err(e) = std::fs::metadata(path) {
                return Err(SftpError::Config(format!(
                    "known_hosts {}: {e}; create it with `ssh-keyscan -p {port} {host} > {}` after checking the \
                     fingerprint with the server's administrator",
                    path.display(),
                    path.display()
                )));
            }
            let entries = russh::keys::known_hosts::known_host_keys_path(host, port, path)
                .map_err(|e| SftpError::Config(format!("known_hosts {}: cannot read it: {e}", path.display())))?;
            if entries.iter().any(|(_, k)| k == key) {
                return Ok(());
            }
            if entries.is_empty() {
                Err(SftpError::HostKey(format!(
                    "host key of {host}:{port} is unknown: {} has no entry for {}; the server presented {algo} \
                     {presented}; connection refused. Check that fingerprint with the server's administrator, then \
                     add the key (`ssh-keyscan -p {port} {host} >> {}`) or set host_key_fingerprint",
                    path.display(),
                    host_port(host, port),
                    path.display()
                )))
            } else {
                let lines: Vec<String> = entries.iter().map(|(l, _)| l.to_string()).collect();
                Err(SftpError::HostKey(format!(
                    "host key of {host}:{port} has CHANGED: the server presented {algo} {presented}, which is not \
                     the key {} lists for {} (line {}); connection refused. If the change is expected, confirm the \
                     new fingerprint with the server's administrator and replace the line; otherwise someone may be \
                     intercepting the connection",
                    path.display(),
                    host_port(host, port),
                    lines.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed ed25519 public key (test vector, not a secret).
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJyEnLrKOy81jJOriL6Lt2oG6CfayLiupTr60PX0T3yU";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINEg8jTnambIQulUrQuKJ2WKeHrZvm7pK+ueO1TSQM2S";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn fingerprint_pin() {
        let k = key(KEY);
        let fp = fingerprint(&k);
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert!(check_host_key(&HostKeyPin::Fingerprint(fp.clone()), "h", 22, &k).is_ok());
        let e = check_host_key(&HostKeyPin::Fingerprint(fp), "h", 22, &key(OTHER)).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn known_hosts_pin() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        std::fs::write(
            &kh,
            format!("# comment\n[h]:2222 ssh-ed25519 {KEY}\nother ssh-ed25519 {OTHER}\n"),
        )
        .unwrap();
        let pin = HostKeyPin::KnownHosts(kh.clone());
        assert!(check_host_key(&pin, "h", 2222, &key(KEY)).is_ok());
        let e = check_host_key(&pin, "h", 2222, &key(OTHER)).unwrap_err().to_string();
        assert!(e.contains("CHANGED"), "{e}");
        let e = check_host_key(&pin, "h", 22, &key(KEY)).unwrap_err().to_string();
        assert!(e.contains("unknown"), "{e}");
        let missing = HostKeyPin::KnownHosts(dir.path().join("nope"));
        assert!(matches!(
            check_host_key(&missing, "h", 22, &key(KEY)),
            Err(SftpError::Config(_))
        ));
    }
}
