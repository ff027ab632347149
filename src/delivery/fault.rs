//! A fault a test injects into a real `hydrant` process through the environment: with
//! `HYDRANT_FAULT=after_upload_before_commit`, the process aborts (as `kill -9` would end it:
//! no cleanup, nothing more written) right after its first object reached the destination and
//! before that object's markers and checkpoint are committed. The end-to-end proof that a kill
//! during a drain does not duplicate uses it (`tests/clients/test_drain_kill.py`). Read once,
//! when the first delivery worker starts; never set it in production.

use std::sync::LazyLock;

const VAR: &str = "HYDRANT_FAULT";

static AFTER_UPLOAD_BEFORE_COMMIT: LazyLock<bool> = LazyLock::new(|| {
    let Ok(value) = std::env::var(VAR) else { return false };
    if value == "after_upload_before_commit" {
        tracing::warn!(fault = %value, "HYDRANT_FAULT is set: the process aborts after its first upload (a test hook)");
        true
    } else {
        tracing::warn!(fault = %value, "HYDRANT_FAULT names no known fault; ignored");
        false
    }
});

/// Reads the environment (once).
pub(super) fn arm() {
    LazyLock::force(&AFTER_UPLOAD_BEFORE_COMMIT);
}

/// Called after an object was delivered and before its progress is committed.
pub(super) fn after_upload() {
    if *AFTER_UPLOAD_BEFORE_COMMIT {
        tracing::error!("HYDRANT_FAULT=after_upload_before_commit: aborting before the commit");
        std::process::abort();
    }
}
