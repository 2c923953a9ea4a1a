//! Host key pinning: the server's key must be the one in the config (its
//! SHA256 fingerprint) or in the named known_hosts file. An unknown or
//! changed key refuses the connection; nothing is ever trusted on first use.

use russh::keys::{Algorithm, HashAlg, PublicKey};

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
            let same_kind: Vec<String> = entries
                .iter()
                .filter(|(_, k)| same_family(&k.algorithm(), &key.algorithm()))
                .map(|(l, _)| l.to_string())
                .collect();
            if entries.is_empty() {
                Err(SftpError::HostKey(format!(
                    "host key of {host}:{port} is unknown: {} has no entry for {}; the server presented {algo} \
                     {presented}; connection refused. Check that fingerprint with the server's administrator, then \
                     add the key (`ssh-keyscan -p {port} {host} >> {}`) or set host_key_fingerprint",
                    path.display(),
                    host_port(host, port),
                    path.display()
                )))
            } else if same_kind.is_empty() {
                let kinds: Vec<String> = entries.iter().map(|(_, k)| k.algorithm().to_string()).collect();
                Err(SftpError::HostKey(format!(
                    "host key of {host}:{port} is unknown: {} lists only {} key(s) for {}, and the server presented                      {algo} {presented}; connection refused. Check that fingerprint with the server's administrator,                      then add the server's {algo} key to the file or set host_key_fingerprint",
                    path.display(),
                    kinds.join(", "),
                    host_port(host, port)
                )))
            } else {
                let lines = same_kind;
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

/// RSA keys match whatever signature hash; other kinds match exactly.
fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    (matches!(a, Algorithm::Rsa { .. }) && matches!(b, Algorithm::Rsa { .. })) || a == b
}

/// The host key algorithms to offer, those of the keys in `known_hosts`
/// for this host first (as OpenSSH does), so a server with several host
/// keys presents the pinned one. `None`: keep russh's default order.
pub fn preferred_host_key_algorithms(pin: &HostKeyPin, host: &str, port: u16) -> Option<Vec<Algorithm>> {
    let HostKeyPin::KnownHosts(path) = pin else {
        return None;
    };
    let known: Vec<Algorithm> = russh::keys::known_hosts::known_host_keys_path(host, port, path)
        .ok()?
        .into_iter()
        .map(|(_, k)| k.algorithm())
        .collect();
    if known.is_empty() {
        return None;
    }
    let default = russh::Preferred::default().key.to_vec();
    let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) = default
        .into_iter()
        .partition(|a| known.iter().any(|k| same_family(k, a)));
    first.extend(rest);
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed ed25519 public key (test vector, not a secret).
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJyEnLrKOy81jJOriL6Lt2oG6CfayLiupTr60PX0T3yU";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINEg8jTnambIQulUrQuKJ2WKeHrZvm7pK+ueO1TSQM2S";

    // A fixed RSA public key (test vector, not a secret).
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAABAQCvV9MzAYcyMlvTf/3u7mxoO1X643VwMNvwSM6WYnr9lkREYl50vVyN3lsQvI/lXMA0qXrvUMJP07KWr4EhRlfJgcK4m6xfKEcc3hY1FKxM1uYgKscTdy2NAIhVFliwmsquNClVLO+Rw/LVW7eEbccOdSJQwg2Ov4hHjJcxko/EJOru8B4chiaTffPkXQjxCzKn1Ea91vel4AaT7+3oV4q3mgWcOe7TgEZ2pO9MN4yzXMzPBj+YiU2QNap/3uR3B9o3Vdstqflz7P/Mvq/B2wysSIeVqb4dkLi1azud+KVTz/GakCyedi795gpljA/1eGXUooC9arFKBEin2GAnXSYp";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap() // ok: test
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
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let kh = dir.path().join("known_hosts");
        std::fs::write(
            &kh,
            format!("# comment\n[h]:2222 ssh-ed25519 {KEY}\nother ssh-ed25519 {OTHER}\n"),
        )
        .unwrap(); // ok: test
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

    #[test]
    fn known_hosts_with_another_kind_of_key_is_unknown_not_changed() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let kh = dir.path().join("known_hosts");
        std::fs::write(&kh, format!("[h]:2222 ssh-rsa {RSA}\n")).unwrap(); // ok: test
        let pin = HostKeyPin::KnownHosts(kh);
        let e = check_host_key(&pin, "h", 2222, &key(KEY)).unwrap_err().to_string();
        assert!(e.contains("lists only") && e.contains("unknown"), "{e}");
        assert!(check_host_key(&pin, "h", 2222, &key(RSA)).is_ok());
        // The known kind is offered first, so the server presents it.
        let algos = preferred_host_key_algorithms(&pin, "h", 2222).unwrap(); // ok: test
        assert!(matches!(algos[0], Algorithm::Rsa { .. }), "{algos:?}");
        assert!(algos.contains(&Algorithm::Ed25519), "other kinds stay offered");
        assert!(preferred_host_key_algorithms(&HostKeyPin::Fingerprint("x".into()), "h", 22).is_none());
    }
}
