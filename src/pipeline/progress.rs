//! The one-line progress display, redrawn each second while stderr is a terminal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::source::client::BssClient;

#[derive(Default)]
pub struct Counters {
    /// Units known so far: members' are added when the listing returns.
    pub units_total: AtomicUsize,
    pub units_done: AtomicUsize,
    pub rows_done: AtomicU64,
}

/// Redraws the line until dropped; never returns.
pub async fn ticker(client: &BssClient, counters: &Counters, quota: u32) {
    let clock = Instant::now();
    let mut last = client.stats.snapshot().requests;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = client.stats.snapshot().requests;
        let done = counters.units_done.load(Ordering::Relaxed);
        let total = counters.units_total.load(Ordering::Relaxed);
        let eta = if done == 0 {
            "?".to_string()
        } else {
            format!(
                "{:.0}s",
                clock.elapsed().as_secs_f64() / done as f64 * total.saturating_sub(done) as f64
            )
        };
        eprint!(
            "\r\x1b[2Kunits {done}/{total} · rows {} · {} req/s (quota {quota}/s) · ETA {eta}",
            counters.rows_done.load(Ordering::Relaxed),
            now - last
        );
        last = now;
    }
}

/// Clears the progress line.
pub fn clear() {
    eprint!("\r\x1b[2K");
}
