//! Looking at segments from outside with what pools and routers know:
//! pool usage in `Segment::inspect`, a pool's chunks removed with its
//! segment in `Segment::remove_if_abandoned`.

use crate::segment::{
    CleanOutcome, ObjectKind, ObjectStats, Segment, SegmentOpenError, SegmentReport,
};

impl Segment {
    /// Reads a segment's header, directory, pools and participants without
    /// joining it (no participant row is taken, nothing is reclaimed).
    pub fn inspect(name: &str) -> Result<SegmentReport, SegmentOpenError> {
        Segment::inspect_with(name, |kind, ptr, size| match kind {
            ObjectKind::POOL | ObjectKind::ARRAY_POOL => ObjectStats {
                pool: crate::pool::stats_at(ptr, size),
                router: None,
            },
            ObjectKind::ROUTER => ObjectStats {
                pool: None,
                router: crate::router::stats_at(ptr, size),
            },
            _ => ObjectStats::default(),
        })
    }

    /// Removes the segment if no live participant is attached (all rows
    /// free or held by dead processes); never removes one with a live
    /// participant. Uses the same closing handshake as a last participant
    /// leaving, so a process joining at that moment either keeps the
    /// segment or backs off. The chunks of its growable pools go with it.
    pub fn remove_if_abandoned(
        name: &str,
        dry_run: bool,
    ) -> Result<CleanOutcome, SegmentOpenError> {
        super::install();
        Segment::remove_abandoned(name, dry_run)
    }
}
