//! The time-based hold-out: what the models may learn from, and what they are judged on.
//!
//! Everything before the cutoff trains; everything from the cutoff on is the test
//! window. Two protocols decide what counts:
//!
//! * **strict** (the product's own): every event kind trains; a test user's
//!   relevant items are the distinct items they *added to cart* in the test window.
//! * **reference** (to sit beside published numbers on RetailRocket): `transaction`
//!   events are dropped everywhere; a test user's relevant items are the distinct
//!   items of *any* event in the test window that were seen in training, and only
//!   users known from training (those the reference pipeline could recommend to)
//!   are evaluated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::events::{EventKind, EventLog};
use super::time::{format_date, parse_date_ms, DAY_MS};

/// Which evaluation protocol a split follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Relevant = items added to cart in the test window (the default).
    #[default]
    Strict,
    /// The published RetailRocket study's protocol; see the module docs.
    Reference,
}

impl Protocol {
    /// The protocol's name as used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Strict => "strict",
            Protocol::Reference => "reference",
        }
    }

    /// Whether events of `kind` take part at all under this protocol.
    pub fn keeps(self, kind: EventKind) -> bool {
        !(self == Protocol::Reference && kind == EventKind::Transaction)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "strict" => Ok(Protocol::Strict),
            "reference" => Ok(Protocol::Reference),
            other => Err(format!(
                "unknown protocol `{other}` (expected strict or reference)"
            )),
        }
    }
}

/// Where the test window starts: a fixed date, or the last N days of the data.
#[derive(Debug, Clone, PartialEq)]
pub enum Cutoff {
    /// Midnight UTC of this `YYYY-MM-DD` date.
    Date(String),
    /// The last N whole days before the day after the latest event.
    LastDays(u32),
}

impl Cutoff {
    /// The cutoff in UTC milliseconds for the events `log`.
    pub fn resolve(&self, log: &EventLog) -> Result<i64, String> {
        let (first, last) = log.time_range().ok_or("there are no events to split")?;
        let cutoff = match self {
            Cutoff::Date(date) => parse_date_ms(date)?,
            Cutoff::LastDays(days) => {
                let end_of_data = (last.div_euclid(DAY_MS) + 1) * DAY_MS;
                end_of_data - i64::from(*days) * DAY_MS
            }
        };
        if cutoff <= first || cutoff > last {
            return Err(format!(
                "the cutoff {} leaves no training or no test events (the data spans {} .. {})",
                format_date(cutoff),
                format_date(first),
                format_date(last)
            ));
        }
        Ok(cutoff)
    }
}

/// Events split at a cutoff under a protocol.
#[derive(Debug, Clone)]
pub struct Split {
    /// Events before the cutoff that the protocol keeps.
    pub train: EventLog,
    /// Events at or after the cutoff that the protocol keeps.
    pub test: EventLog,
    /// The cutoff, UTC milliseconds.
    pub cutoff_ms: i64,
    /// The protocol followed.
    pub protocol: Protocol,
}

/// Split `log` at `cutoff_ms` under `protocol`.
pub fn split(log: &EventLog, cutoff_ms: i64, protocol: Protocol) -> Split {
    let train = log.filter(|i| log.timestamp_ms[i] < cutoff_ms && protocol.keeps(log.kind[i]));
    let test = log.filter(|i| log.timestamp_ms[i] >= cutoff_ms && protocol.keeps(log.kind[i]));
    Split {
        train,
        test,
        cutoff_ms,
        protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> EventLog {
        let mut log = EventLog::default();
        let day = DAY_MS;
        log.push(10 * day, 1, EventKind::View, 100);
        log.push(11 * day, 1, EventKind::Transaction, 100);
        log.push(20 * day, 1, EventKind::AddToCart, 101);
        log.push(21 * day + 5, 2, EventKind::Transaction, 102);
        log.sort_dedup();
        log
    }

    #[test]
    fn strict_keeps_every_kind_and_cuts_by_time() {
        let s = split(&log(), 15 * DAY_MS, Protocol::Strict);
        assert_eq!(s.train.len(), 2);
        assert_eq!(s.test.len(), 2);
        assert!(s.train.timestamp_ms.iter().all(|&t| t < 15 * DAY_MS));
    }

    #[test]
    fn reference_drops_transactions_on_both_sides() {
        let s = split(&log(), 15 * DAY_MS, Protocol::Reference);
        assert_eq!(s.train.kind, vec![EventKind::View]);
        assert_eq!(s.test.kind, vec![EventKind::AddToCart]);
    }

    #[test]
    fn last_days_counts_back_from_the_day_after_the_last_event() {
        let cut = Cutoff::LastDays(2).resolve(&log()).unwrap();
        assert_eq!(cut, 20 * DAY_MS);
        assert!(Cutoff::LastDays(100).resolve(&log()).is_err());
        assert!(Cutoff::Date("1990-01-01".into()).resolve(&log()).is_err());
    }
}
