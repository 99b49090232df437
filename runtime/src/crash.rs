//! Test-only crash points.
//!
//! `crash_point!("name")` marks a place between two steps of a shared-memory
//! update where a process could die. With the `crash-hooks` feature and
//! `SHMIDL_CRASH_AT=name` in the environment, the process aborts there (no
//! destructor runs, exactly like `kill -9`); the crash-window tests check
//! that survivors see what `docs/crash-safety.md` says. Without the feature
//! the macro expands to nothing.

/// Aborts here if the `crash-hooks` feature is on and `SHMIDL_CRASH_AT`
/// names this point.
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "crash-hooks")]
        $crate::crash::maybe_abort($name);
    };
}
pub(crate) use crash_point;

/// The crash point named by `SHMIDL_CRASH_AT`, read once.
#[cfg(feature = "crash-hooks")]
pub(crate) fn maybe_abort(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("SHMIDL_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        std::process::abort();
    }
}
