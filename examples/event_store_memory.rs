//! Memory of the service's in-memory event store under a long stream of events.
//!
//! Pushes `EVENTS` (default 10 million) view events from `USERS` (default
//! 3 million) distinct shoppers into a store bounded at `[serve]` defaults
//! (or `MAX_USERS` / `EVENTS_PER_USER`), and prints the resident memory of the
//! process before, at every tenth, and after, beside the store's counts.
//!
//!   cargo run --release --example event_store_memory

use std::time::Instant;

use recsys::data::EventKind;
use recsys::serve::store::{MemoryStore, ServiceEvent};
use recsys::serve::ServeConfig;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let defaults = ServeConfig::default();
    let events = env("EVENTS", 10_000_000);
    let users = env("USERS", 3_000_000) as u64;
    let max_users = env("MAX_USERS", defaults.max_users);
    let per_user = env("EVENTS_PER_USER", defaults.events_per_user);
    let store = MemoryStore::new(max_users, per_user);
    println!(
        "store bound: {max_users} users x {per_user} events; {events} events from {users} users"
    );
    println!("before: RSS {:.0} MB", rss_mb());
    let start = Instant::now();
    // A cheap deterministic stream (xorshift): active users come back often,
    // so lists fill up while the long tail churns through the LRU.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..events {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let user = if x.is_multiple_of(4) {
            (x >> 8) % 10_000
        } else {
            (x >> 8) % users
        };
        store.push(
            user as i64,
            ServiceEvent {
                item_id: ((x >> 32) % 235_061) as i64,
                kind: EventKind::View,
                timestamp_ms: i as i64,
            },
        );
        if (i + 1).is_multiple_of((events / 10).max(1)) {
            println!(
                "{:>10} events: {:>8} users, {:>10} events held, RSS {:.0} MB",
                i + 1,
                store.users(),
                store.events(),
                rss_mb()
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "after: {} users, {} events held (capacity {}), RSS {:.0} MB; {:.1} M events/s on one thread",
        store.users(),
        store.events(),
        store.capacity(),
        rss_mb(),
        events as f64 / seconds / 1e6
    );
}
