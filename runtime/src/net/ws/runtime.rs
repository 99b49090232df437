//! Which tokio runtime the websocket transport runs on: the caller's (a
//! [`Handle`]) or one of its own that lives until the last user is gone or
//! it is [shut down](NetRuntime::shutdown).

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::runtime::{Builder, Handle, Runtime};

use super::NetStartError;

/// The runtime publishers and subscribers spawn their tasks on. Cheap to
/// clone; clones share the runtime.
#[derive(Clone)]
pub struct NetRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle,
    /// Our own runtime, if we started one.
    owned: Mutex<Option<Runtime>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let owned = self
            .owned
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(rt) = owned {
            // Never blocks, so it is safe even on one of the runtime's own
            // threads: its tasks are dropped at their next await.
            rt.shutdown_background();
        }
    }
}

impl NetRuntime {
    /// Runs on the caller's runtime (which must have the `net` and `time`
    /// drivers enabled). The caller keeps it alive.
    pub fn from_handle(handle: Handle) -> NetRuntime {
        NetRuntime {
            inner: Arc::new(Inner {
                handle,
                owned: Mutex::new(None),
            }),
        }
    }

    /// The runtime the calling thread runs in, if any.
    pub fn current() -> Option<NetRuntime> {
        Handle::try_current().ok().map(NetRuntime::from_handle)
    }

    /// Starts a multi-threaded runtime of its own with `workers` worker
    /// threads (at least 1), named `shmidl-net`. It lives until every clone
    /// (and every publisher and subscriber on it) is dropped, or until
    /// [`shutdown`](NetRuntime::shutdown).
    ///
    /// # Errors
    ///
    /// [`NetStartError::Runtime`] if the threads cannot be started.
    pub fn start(workers: usize) -> Result<NetRuntime, NetStartError> {
        let rt = Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("shmidl-net")
            .enable_all()
            .build()
            .map_err(NetStartError::Runtime)?;
        Ok(NetRuntime {
            inner: Arc::new(Inner {
                handle: rt.handle().clone(),
                owned: Mutex::new(Some(rt)),
            }),
        })
    }

    /// The current runtime if the caller runs in one, else a new one of its
    /// own with 2 worker threads.
    ///
    /// # Errors
    ///
    /// As [`start`](NetRuntime::start).
    pub fn current_or_start() -> Result<NetRuntime, NetStartError> {
        match NetRuntime::current() {
            Some(rt) => Ok(rt),
            None => NetRuntime::start(2),
        }
    }

    /// The handle tasks are spawned with.
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// Whether this runtime is the library's own (not the caller's).
    pub fn is_owned(&self) -> bool {
        self.inner
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Stops an owned runtime now, waiting up to `timeout` for its threads
    /// (from inside an async context the wait is skipped); every publisher
    /// and subscriber on it stops. Does nothing to a caller's runtime.
    pub fn shutdown(&self, timeout: Duration) {
        let owned = self
            .inner
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(rt) = owned {
            if Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(timeout);
            }
        }
    }
}

impl fmt::Debug for NetRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetRuntime")
            .field("owned", &self.is_owned())
            .finish_non_exhaustive()
    }
}
