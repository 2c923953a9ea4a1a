//! Which process is at work: `host:pid`, as the outbox's send leases and the
//! journal's runs record it (so `dirsync runs` and the console say which
//! daemon ran what). A leaf module: it depends on nothing of ours.

/// This machine's name (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// `host:pid` of this process.
pub fn worker_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_is_this_host_and_process() {
        let w = worker_id();
        assert!(w.ends_with(&format!(":{}", std::process::id())), "{w}");
        assert!(w.starts_with(&hostname()));
    }
}
