//! Auditing a quiescent segment: recovering what crashes leaked.
//!
//! Every crash window in shmidl's protocols is ordered so that a process
//! dying in it can only *leak* (a reference counted but recorded nowhere,
//! a slot popped off the free list but not yet marked). `cleanup_dead`
//! recovers everything that *was* recorded; an audit recovers the rest,
//! when no other live participant could be in the middle of a step.

use thiserror::Error;

use crate::{
    pool::{audit_pool, PoolAudit},
    segment::{ObjectKind, Segment},
};

/// What [`Segment::audit`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Dead participants reclaimed first.
    pub reclaimed_participants: usize,
    /// Pools audited.
    pub pools: u32,
    /// Reference counts corrected.
    pub counts_fixed: u32,
    /// Slots returned to free lists.
    pub slots_freed: u32,
}

/// An audit could not run.
#[derive(Debug, Error)]
pub enum AuditError {
    /// Another live participant is attached: its steps could look like
    /// leaks.
    #[error(
        "segment `{segment}` has {others} other live participant(s); an audit needs it quiescent"
    )]
    NotQuiescent {
        /// Segment name.
        segment: String,
        /// Live participants other than the caller.
        others: u32,
    },
    /// Probing participants failed.
    #[error("probing participants failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Segment {
    /// Reclaims dead participants, then checks every pool reference against
    /// its holders (participants' holdings records and router queue
    /// entries) and repairs what crashes leaked: references no one holds
    /// are released, slots lost off a free list are put back, cells a dead
    /// popper left claimed are handed back. Requires that this handle be
    /// the only live participant (`shmidl clean` and tests call it when
    /// everyone else is gone).
    pub fn audit(&self) -> Result<AuditReport, AuditError> {
        super::install();
        let reclaimed_participants = self.cleanup_dead()?;
        let others = self.attached().saturating_sub(1);
        if others > 0 {
            return Err(AuditError::NotQuiescent {
                segment: self.name().to_owned(),
                others,
            });
        }
        let objects = self.objects_raw();
        let mut queued: Vec<(u64, Vec<u64>)> = Vec::new();
        for &(kind, offset, size) in &objects {
            if kind == ObjectKind::ROUTER {
                if let Some(q) = crate::router::audit_queues(self, offset, size) {
                    queued.push(q);
                }
            }
        }
        let mut report = AuditReport {
            reclaimed_participants,
            ..AuditReport::default()
        };
        for &(kind, offset, _) in &objects {
            if kind != ObjectKind::POOL && kind != ObjectKind::ARRAY_POOL {
                continue;
            }
            let entries: Vec<u64> = queued
                .iter()
                .filter(|(pool, _)| *pool == offset)
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            if let Some(PoolAudit {
                counts_fixed,
                slots_freed,
            }) = audit_pool(self, offset, &entries)
            {
                report.pools += 1;
                report.counts_fixed += counts_fixed;
                report.slots_freed += slots_freed;
            }
        }
        if report.counts_fixed + report.slots_freed > 0 {
            tracing::warn!(segment = %self.name(), ?report, "audit repaired leaks");
        }
        Ok(report)
    }
}
