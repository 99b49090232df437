//! A connection's queue on the sending side: frames waiting for the
//! writer, small ones copied into runs (one buffer, no entry per message),
//! large ones shared; the slow-receiver policies drop frame by frame; each
//! message's completion runs when its last copy is written or dropped.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, AtomicUsize},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Bytes;

use super::{frame::parse_ws_head, publisher::SendOutcome};

/// Calls the user's callback once every copy of a message is written or
/// dropped (when the last reference goes).
pub(super) type DoneCallback = Box<dyn FnOnce(SendOutcome) + Send>;

pub(super) struct Completion {
    pub(super) connections: usize,
    pub(super) written: AtomicUsize,
    pub(super) callback: Mutex<Option<DoneCallback>>,
}

impl Drop for Completion {
    fn drop(&mut self) {
        let callback = self
            .callback
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(callback) = callback {
            callback(SendOutcome {
                connections: self.connections,
                written: *self.written.get_mut(),
            });
        }
    }
}

/// Frames up to this size (websocket header included) are copied into
/// each connection's queue; larger ones are built once and shared.
pub(super) const INLINE_MAX: usize = 4096;

/// Queued frames, as one entry or several in a row. Every frame is the
/// whole websocket frame (RFC 6455 header, then the 44-byte header and
/// payload), ready to be written to the socket as it is.
pub(super) enum Entry {
    /// `count` small frames in a row, `bytes` long in all: the next bytes
    /// of the queue's `inline` buffer (a copy per connection costs less
    /// than an allocation; a run costs one entry, not one per frame). With
    /// a completion, `count` is 1.
    Inline {
        count: usize,
        bytes: usize,
        done: Option<Arc<Completion>>,
    },
    /// A large frame in a buffer of its own, shared by every connection.
    Shared {
        frame: Bytes,
        done: Option<Arc<Completion>>,
    },
}

impl Entry {
    pub(super) fn frames(&self) -> usize {
        match self {
            Entry::Inline { count, .. } => *count,
            Entry::Shared { .. } => 1,
        }
    }

    pub(super) fn done(&self) -> Option<&Arc<Completion>> {
        match self {
            Entry::Inline { done, .. } | Entry::Shared { done, .. } => done.as_ref(),
        }
    }
}

/// The length of the first of the (well-formed, our own) frames in `bytes`.
pub(super) fn first_frame_len(bytes: &[u8]) -> usize {
    match parse_ws_head(bytes) {
        Ok(Some(head)) => head.header_len + head.payload_len as usize,
        // Never: every inline frame was written by `send_frame`.
        _ => bytes.len(),
    }
}

pub(super) struct Queue {
    pub(super) entries: VecDeque<Entry>,
    /// Frames in `entries` (what the capacity counts).
    pub(super) frames: usize,
    /// The bytes of the queued inline frames, in queue order, from `head`.
    pub(super) inline: Vec<u8>,
    pub(super) head: usize,
    /// Taken by the writer but not yet flushed.
    pub(super) in_flight: usize,
    pub(super) closed: bool,
    /// The writer task is waiting for frames (then a sender wakes it).
    pub(super) writer_waiting: bool,
    /// Threads waiting on `Client::space`.
    pub(super) space_waiters: usize,
}

impl Queue {
    /// An empty, open queue.
    pub(super) fn new() -> Queue {
        Queue {
            entries: VecDeque::new(),
            frames: 0,
            inline: Vec::new(),
            head: 0,
            in_flight: 0,
            closed: false,
            writer_waiting: false,
            space_waiters: 0,
        }
    }

    /// Removes the oldest frame (its inline bytes too); returns its
    /// completion, to drop outside the lock.
    pub(super) fn pop_front(&mut self) -> Option<Arc<Completion>> {
        let front = self.entries.front_mut()?;
        self.frames -= 1;
        match front {
            Entry::Inline { count, bytes, .. } if *count > 1 => {
                let len = first_frame_len(self.inline.get(self.head..).unwrap_or_default());
                *count -= 1;
                *bytes -= len;
                self.head += len;
                None
            }
            _ => {
                let entry = self.entries.pop_front()?;
                if let Entry::Inline { bytes, .. } = entry {
                    self.head += bytes;
                    if self.head >= self.inline.len() {
                        self.inline.clear();
                        self.head = 0;
                    }
                }
                match entry {
                    Entry::Inline { done, .. } | Entry::Shared { done, .. } => done,
                }
            }
        }
    }

    pub(super) fn push_shared(&mut self, frame: Bytes, done: Option<Arc<Completion>>) {
        self.frames += 1;
        self.entries.push_back(Entry::Shared { frame, done });
    }

    /// Appends the bytes of an inline frame (to the last run, when it has
    /// fewer than `run` frames and no completion).
    pub(super) fn push_inline(&mut self, frame: &[u8], done: Option<Arc<Completion>>, run: usize) {
        self.push_inline_with(done, run, |out| out.extend_from_slice(frame));
    }

    /// As [`push_inline`](Self::push_inline), the frame's bytes appended by
    /// `write` to the queue's buffer (so that a frame for one connection is
    /// encoded in place, not copied).
    pub(super) fn push_inline_with(
        &mut self,
        done: Option<Arc<Completion>>,
        run: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        // Reclaims the space of frames already taken or dropped once it is
        // at least as large as what is still queued.
        if self.head > 0 && self.head >= self.inline.len() - self.head {
            self.inline.drain(..self.head);
            self.head = 0;
        }
        let before = self.inline.len();
        write(&mut self.inline);
        let len = self.inline.len() - before;
        self.frames += 1;
        if done.is_none() {
            if let Some(Entry::Inline {
                count,
                bytes,
                done: None,
            }) = self.entries.back_mut()
            {
                if *count >= run {
                    self.entries.push_back(Entry::Inline {
                        count: 1,
                        bytes: len,
                        done: None,
                    });
                    return;
                }
                *count += 1;
                *bytes += len;
                return;
            }
        }
        self.entries.push_back(Entry::Inline {
            count: 1,
            bytes: len,
            done,
        });
    }

    /// Moves whole entries of up to `n` frames in all into `batch` (an
    /// entry that would pass `n` stays: runs are never longer than a
    /// batch, so a writer with an empty batch always gets one); returns
    /// how many frames it moved. Their inline bytes: when every entry is
    /// taken, the queue's buffer is swapped with `spare` (empty, and
    /// then the queue's), so the caller copies nothing under the lock;
    /// otherwise they are copied to the end of `out`.
    pub(super) fn take(
        &mut self,
        n: usize,
        batch: &mut Vec<Entry>,
        out: &mut Vec<u8>,
        spare: &mut Vec<u8>,
    ) -> usize {
        if n >= self.frames && self.head == 0 {
            std::mem::swap(&mut self.inline, spare);
            batch.extend(self.entries.drain(..));
            return std::mem::take(&mut self.frames);
        }
        let (mut taken, mut bytes) = (0, 0);
        while let Some(front) = self.entries.front() {
            if taken + front.frames() > n {
                break;
            }
            let Some(entry) = self.entries.pop_front() else {
                break;
            };
            taken += entry.frames();
            if let Entry::Inline { bytes: b, .. } = &entry {
                bytes += b;
            }
            batch.push(entry);
        }
        self.frames -= taken;
        out.extend_from_slice(
            self.inline
                .get(self.head..self.head + bytes)
                .unwrap_or_default(),
        );
        self.head += bytes;
        if self.head >= self.inline.len() {
            self.inline.clear();
            self.head = 0;
        }
        taken
    }
}

/// One connection as the sending side sees it.
pub(super) struct Client {
    pub(super) queue: Mutex<Queue>,
    /// Senders wait here for room; `drain` waits here for an empty queue.
    pub(super) space: Condvar,
    /// The writer task waits here for frames.
    pub(super) ready: Notify,
    /// The subscriber's address.
    pub(super) peer: std::net::SocketAddr,
    /// Frames written to this connection.
    pub(super) written: AtomicU64,
    /// Messages dropped for this connection (a full queue under
    /// `SlowPolicy::Wait` or `DropOldest`).
    pub(super) dropped: AtomicU64,
}

impl Client {
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `space` until `done` holds for the queue or it is closed;
    /// `false` if `deadline` came first. Counted in `space_waiters` while
    /// waiting, so that the writer notifies only when someone waits.
    pub(super) fn wait_until<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        deadline: std::time::Instant,
        done: impl Fn(&Queue) -> bool,
    ) -> (MutexGuard<'a, Queue>, bool) {
        while !q.closed && !done(&q) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (q, false);
            }
            q.space_waiters += 1;
            q = self
                .space
                .wait_timeout(q, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            q.space_waiters -= 1;
        }
        (q, true)
    }

    pub(super) fn close(&self) {
        let dropped = {
            let mut q = self.lock();
            q.closed = true;
            q.inline = Vec::new();
            q.head = 0;
            q.frames = 0;
            std::mem::take(&mut q.entries)
        };
        // Completions run outside the lock.
        drop(dropped);
        self.space.notify_all();
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{ws_binary_header, WS_HEADER_MAX};
    use super::*;

    /// A websocket frame whose payload is `len` bytes of `tag`.
    fn frame(tag: u8, len: usize) -> Vec<u8> {
        let mut head = [0u8; WS_HEADER_MAX];
        let n = ws_binary_header(len, &mut head);
        let mut out = head[..n].to_vec();
        out.resize(n + len, tag);
        out
    }

    fn queue() -> Queue {
        Queue::new()
    }

    fn completion() -> Arc<Completion> {
        Arc::new(Completion {
            connections: 1,
            written: AtomicUsize::new(0),
            callback: Mutex::new(None),
        })
    }

    #[test]
    fn runs_of_inline_frames_are_dropped_frame_by_frame_and_taken_whole_in_order() {
        let frames: Vec<Vec<u8>> = (0..10u8)
            .map(|i| frame(i, [3, 200, 0, 125, 126][usize::from(i) % 5]))
            .collect();
        let mut q = queue();
        for (i, f) in frames.iter().enumerate() {
            // Frame 4 has a completion: an entry of its own; runs of 3.
            q.push_inline(f, (i == 4).then(completion), 3);
        }
        q.push_shared(Bytes::from(frame(10, 5000)), None);
        q.push_inline(&frames[0], None, 3);
        // [0 1 2] [3] [4 done] [5 6 7] [8 9] [shared] [0]
        assert_eq!((q.frames, q.entries.len()), (12, 7));
        // The oldest two go (as DropOldest does).
        assert!(q.pop_front().is_none());
        assert!(q.pop_front().is_none());
        let (mut batch, mut out, mut spare) = (Vec::new(), Vec::new(), Vec::new());
        // Whole entries only: [2] [3] [4], not [5 6 7].
        assert_eq!(q.take(4, &mut batch, &mut out, &mut spare), 3);
        assert_eq!(out, frames[2..5].concat());
        assert_eq!(batch.iter().filter(|e| e.done().is_some()).count(), 1);
        assert_eq!(q.take(4, &mut batch, &mut out, &mut spare), 3);
        assert_eq!(out, frames[2..8].concat());
        assert!(spare.is_empty());
        out.clear();
        batch.clear();
        // Everything left: [8 9] [shared] [0] (copied: frames before them
        // were taken from the same buffer).
        assert_eq!(q.take(100, &mut batch, &mut out, &mut spare), 4);
        assert_eq!(out, [&frames[8..10].concat()[..], &frames[0][..]].concat());
        assert!(matches!(batch[1], Entry::Shared { .. }));
        assert_eq!((q.frames, q.entries.len(), q.inline.len()), (0, 0, 0));
        // Everything, from the start of the buffer: swapped, not copied.
        q.push_inline(&frames[1], None, 3);
        q.push_inline(&frames[2], None, 3);
        assert_eq!(q.take(100, &mut batch, &mut out, &mut spare), 2);
        assert_eq!(spare, frames[1..3].concat());
        assert_eq!((q.frames, q.entries.len(), q.inline.len()), (0, 0, 0));
    }
}
