//! Stopping a run early and cleanly: on SIGTERM or SIGINT (Kubernetes sends
//! SIGTERM before SIGKILL at every eviction and deadline), or when a bucket
//! output's lease is lost. Shared by the BSS client (no request is sent once
//! stopped, and one in flight is dropped), the output (open uploads are
//! aborted, writes refused) and the pipeline (no unit starts). A stopped run
//! exits 4 and the next run resumes it.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// How long a stopped run may take to abort its uploads and release the
/// lease before the process exits anyway.
/// Under Kubernetes' default 30 s between SIGTERM and SIGKILL.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stop({:?})", self.reason())
    }
}

impl Stop {
    /// Stops the run; the first reason given is the one reported.
    pub fn trip(&self, why: impl Into<String>) {
        let _ = self.reason.set(why.into());
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.get().cloned()
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Runs `work` unless the run stops first.
    pub async fn guard<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, String> {
        tokio::select! {
            biased;
            () = self.token.cancelled() => Err(self.reason().unwrap_or_else(|| "stopped".into())),
            v = work => Ok(v),
        }
    }
}

/// Trips `stop` on the first SIGTERM or SIGINT; a second one, or a stopped run
/// still running after [`GRACE`], ends the process at once (exit 4).
pub fn on_signals(stop: Stop) {
    tokio::spawn(async move {
        let first = signal_name().await;
        tracing::warn!("{first}: stopping; open uploads are aborted and the lease released");
        stop.trip(format!("{first} received"));
        tokio::select! {
            _ = signal_name() => {}
            () = tokio::time::sleep(GRACE) => {}
        }
        eprintln!("hcbill: stopped ({first}); the next run resumes");
        std::process::exit(4);
    });
}

async fn signal_name() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins_and_guarded_work_ends() {
        let s = Stop::default();
        assert!(s.guard(async { 1 }).await == Ok(1));
        let t = s.clone();
        let pending = tokio::spawn(async move { t.guard(std::future::pending::<()>()).await });
        s.trip("SIGTERM received");
        s.trip("later");
        assert_eq!(pending.await.unwrap(), Err("SIGTERM received".to_string()));
        assert!(s.is_stopped());
    }
}
