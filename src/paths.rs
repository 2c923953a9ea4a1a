//! Paths in config files: relative ones resolve against the folder of the
//! file that holds them. A leaf: config and every adapter may use it.

use std::path::{Path, PathBuf};

/// Resolve `p` against `base` unless it is absolute.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_base_and_absolute_ones_stay() {
        assert_eq!(
            resolve(Path::new("/etc/dirsync"), Path::new("p.toml")),
            Path::new("/etc/dirsync/p.toml")
        );
        assert_eq!(
            resolve(Path::new("/etc/dirsync"), Path::new("/srv/p.toml")),
            Path::new("/srv/p.toml")
        );
    }
}
