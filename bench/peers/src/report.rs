//! Latency samples, percentiles and the two output formats (table and JSON).
//!
//! Methodology (shared with `shmidl bench pubsub`): each iteration's round trip is measured
//! with one `std::time::Instant` (CLOCK_MONOTONIC) read before the ping is sent and one after
//! the pong is received. One-way latency is that round trip divided by two, per iteration.
//! Percentiles use the nearest-rank method on the sorted samples: `p` is the sample at
//! 1-based rank `ceil(p / 100 * n)`.

use std::fmt::Write as _;

use serde_json::{json, Value};

/// Minimum, p50, p90, p99 and maximum of one set of samples, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Computes the percentiles of `sorted`, scaled by `scale` (1.0 for round trips, 0.5 for
    /// one-way latencies). `sorted` must be sorted ascending and non-empty.
    fn of_sorted(sorted: &[u64], scale: f64) -> Self {
        debug_assert!(!sorted.is_empty());
        debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        let at = |p: f64| sorted[nearest_rank(sorted.len(), p) - 1] as f64 * scale;
        Self {
            min: sorted[0] as f64 * scale,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: sorted[sorted.len() - 1] as f64 * scale,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "min": self.min,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "max": self.max,
        })
    }
}

/// The 1-based nearest rank of percentile `p` among `n` samples: `ceil(p / 100 * n)`,
/// clamped to `1..=n`.
fn nearest_rank(n: usize, p: f64) -> usize {
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    rank.clamp(1, n)
}

/// The result of one benchmark run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `cacheline`, `futex` or `iceoryx2`.
    pub bench: &'static str,
    /// `busy-poll`, `blocking` (futex, iceoryx2 listener) or `blocking-waitset`.
    pub mode: &'static str,
    /// Bytes per message as the transport sees them.
    pub payload: usize,
    /// Measured iterations (warm-up excluded).
    pub iterations: u64,
    /// Warm-up iterations run before measuring.
    pub warmup: u64,
    /// `free`, `same-cpu` or `split-cpu`.
    pub placement: &'static str,
    /// iceoryx2 version, for iceoryx2 runs.
    pub iceoryx2: Option<&'static str>,
    pub one_way_ns: Percentiles,
    pub round_trip_ns: Percentiles,
}

impl Report {
    /// Builds a report from the measured round trips (in nanoseconds, any order).
    pub fn new(
        bench: &'static str,
        mode: &'static str,
        payload: usize,
        warmup: u64,
        placement: &'static str,
        mut round_trips: Vec<u64>,
    ) -> Self {
        assert!(!round_trips.is_empty(), "at least one measured iteration");
        round_trips.sort_unstable();
        Self {
            bench,
            mode,
            payload,
            iterations: round_trips.len() as u64,
            warmup,
            placement,
            iceoryx2: (bench == "iceoryx2").then_some(crate::ICEORYX2_VERSION),
            one_way_ns: Percentiles::of_sorted(&round_trips, 0.5),
            round_trip_ns: Percentiles::of_sorted(&round_trips, 1.0),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "bench": self.bench,
            "mode": self.mode,
            "payload": self.payload,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "placement": self.placement,
            "one_way_ns": self.one_way_ns.to_json(),
            "round_trip_ns": self.round_trip_ns.to_json(),
        });
        if let Some(version) = self.iceoryx2 {
            v["iceoryx2_version"] = json!(version);
        }
        v
    }

    /// A short title: `iceoryx2 0.10.0 busy-poll, 64 B, free`.
    pub fn title(&self) -> String {
        let name = match self.iceoryx2 {
            Some(version) => format!("{} {version}", self.bench),
            None => self.bench.to_owned(),
        };
        format!(
            "{name} {}, {}, {}",
            self.mode,
            human_bytes(self.payload),
            self.placement
        )
    }

    /// A readable table of both distributions.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} iterations after {} warm-up",
            self.title(),
            self.iterations,
            self.warmup,
        );
        let _ = writeln!(
            out,
            "  {:<11} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "ns", "min", "p50", "p90", "p99", "max"
        );
        for (label, p) in [
            ("one-way", self.one_way_ns),
            ("round-trip", self.round_trip_ns),
        ] {
            let _ = writeln!(
                out,
                "  {:<11} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>12.1}",
                label, p.min, p.p50, p.p90, p.p99, p.max
            );
        }
        out
    }
}

/// One line per report: the summary `all` prints after the individual tables.
pub fn summary_table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<52} {:>10} {:>10} {:>10} {:>14}",
        "one-way latency (ns)", "p50", "p90", "p99", "round-trip p50"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<52} {:>10.1} {:>10.1} {:>10.1} {:>14.1}",
            r.title(),
            r.one_way_ns.p50,
            r.one_way_ns.p90,
            r.one_way_ns.p99,
            r.round_trip_ns.p50
        );
    }
    out
}

/// `64 B`, `4 KiB`, `4 MiB`: exact binary units where the size divides evenly.
pub fn human_bytes(n: usize) -> String {
    const MIB: usize = 1 << 20;
    const KIB: usize = 1 << 10;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_textbook_definition() {
        assert_eq!(nearest_rank(100, 50.0), 50);
        assert_eq!(nearest_rank(100, 99.0), 99);
        assert_eq!(nearest_rank(10, 90.0), 9);
        assert_eq!(nearest_rank(1, 50.0), 1);
        assert_eq!(nearest_rank(3, 0.0), 1);
        assert_eq!(nearest_rank(3, 100.0), 3);
        assert_eq!(nearest_rank(7, 50.0), 4);
    }

    #[test]
    fn one_way_is_half_of_each_round_trip() {
        let sut = Report::new("futex", "blocking", 4, 0, "free", (1..=100).rev().collect());
        assert_eq!(sut.round_trip_ns.min, 1.0);
        assert_eq!(sut.round_trip_ns.p50, 50.0);
        assert_eq!(sut.round_trip_ns.p99, 99.0);
        assert_eq!(sut.round_trip_ns.max, 100.0);
        assert_eq!(sut.one_way_ns.p50, 25.0);
        assert_eq!(sut.one_way_ns.max, 50.0);
        assert_eq!(sut.iterations, 100);
    }

    #[test]
    fn json_has_the_agreed_shape() {
        let sut = Report::new("cacheline", "busy-poll", 8, 1, "free", vec![10, 20, 30]);
        let v = sut.to_json();
        assert_eq!(v["bench"], "cacheline");
        assert_eq!(v["payload"], 8);
        assert_eq!(v["iterations"], 3);
        for key in ["one_way_ns", "round_trip_ns"] {
            for p in ["min", "p50", "p90", "p99", "max"] {
                assert!(v[key][p].is_number(), "{key}.{p}");
            }
        }
        assert!(v.get("iceoryx2_version").is_none());
    }

    #[test]
    fn human_bytes_uses_exact_units() {
        assert_eq!(human_bytes(64), "64 B");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(4 << 20), "4 MiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
