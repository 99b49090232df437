//! What a publisher has sent and its connections have not all taken yet:
//! every frame is appended once to one buffer that every connection reads
//! (one copy and one lock per send, whatever the number of subscribers),
//! with a cursor per connection; the slow-receiver policies move one
//! connection's cursor (dropping its oldest frame) or mark a frame as not
//! for it (a sender that gave up waiting); each message's completion runs
//! when its last copy is written or dropped.
//!
//! A writer takes its connection's next frames under the lock as
//! reference-counted slices of the buffer (what was appended since the
//! last take is frozen into a segment first) and writes them outside the
//! lock. Frames every open connection has taken are let go of.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::publisher::SendOutcome;

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

/// The buffer grows by at least this much when a frame does not fit (so
/// that small frames rarely allocate).
const TAIL_CHUNK: usize = 256 << 10;

/// One connection as the sending side sees it outside the lock.
pub(super) struct Client {
    /// Its place among the outbox's connections.
    pub(super) slot: usize,
    /// Unique among the outbox's connections (slots are reused).
    pub(super) id: u64,
    /// The writer task waits here for frames.
    pub(super) ready: Notify,
    /// The subscriber's address.
    pub(super) peer: SocketAddr,
    /// Frames written to this connection.
    pub(super) written: AtomicU64,
    /// Messages dropped for this connection (a full queue under
    /// `SlowPolicy::Wait` or `DropOldest`).
    pub(super) dropped: AtomicU64,
}

/// A connection's place in the frames (under the lock).
struct Conn {
    client: Arc<Client>,
    /// The next frame it takes.
    cursor: u64,
    /// Frames from `cursor` on that are not for it (ascending): a sender
    /// gave up waiting for room in its queue.
    skips: VecDeque<u64>,
    /// Frames queued for it: from `cursor` on, less `skips`.
    queued: usize,
    /// Taken by its writer and not written yet.
    in_flight: usize,
    closed: bool,
    /// Its writer waits for frames (then a sender wakes it).
    writer_waiting: bool,
}

/// The frames and the connections' places in them. Frames are numbered
/// by their sequence numbers; bytes by their offset since the start.
pub(super) struct Frames {
    /// The next frame's sequence number.
    next: u64,
    /// The oldest frame kept; frames before it every open connection has
    /// taken (or had dropped).
    first: u64,
    /// Where frame `first` starts.
    first_offset: u64,
    /// Where each frame kept ends: `ends[i]` for frame `first + i`.
    ends: VecDeque<u64>,
    /// Frozen bytes, each with its offset, in order; then `tail`.
    segments: VecDeque<(u64, Bytes)>,
    /// Where `tail` starts.
    tail_offset: u64,
    /// Frames appended since the last take.
    tail: BytesMut,
    /// Completions of frames kept, by sequence number (ascending).
    completions: VecDeque<(u64, Arc<Completion>)>,
    conns: Vec<Option<Conn>>,
    /// Connections not closed.
    open: usize,
    next_id: u64,
    /// Threads waiting on [`Outbox::space`].
    pub(super) space_waiters: usize,
}

/// What [`Frames::take`] took.
pub(super) struct Taken {
    /// Frames taken.
    pub(super) frames: usize,
    /// The connection is closed (nothing taken).
    pub(super) closed: bool,
}

impl Frames {
    fn new() -> Frames {
        Frames {
            next: 0,
            first: 0,
            first_offset: 0,
            ends: VecDeque::new(),
            segments: VecDeque::new(),
            tail_offset: 0,
            tail: BytesMut::new(),
            completions: VecDeque::new(),
            conns: Vec::new(),
            open: 0,
            next_id: 0,
            space_waiters: 0,
        }
    }

    /// The next frame's sequence number.
    pub(super) fn next_sequence(&self) -> u64 {
        self.next
    }

    fn conn(&self, slot: usize) -> Option<&Conn> {
        self.conns.get(slot).and_then(Option::as_ref)
    }

    fn conn_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    /// Frames queued for the connection in `slot` (0 when it is gone).
    pub(super) fn queued(&self, slot: usize) -> usize {
        self.conn(slot).map_or(0, |c| c.queued)
    }

    /// Whether every open connection has written everything queued for it.
    pub(super) fn idle(&self) -> bool {
        self.conns
            .iter()
            .flatten()
            .all(|c| c.closed || (c.queued == 0 && c.in_flight == 0))
    }

    /// A new connection, which gets the frames sent from now on.
    fn connect(&mut self, peer: SocketAddr) -> Arc<Client> {
        let slot = self
            .conns
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.conns.len());
        let client = Arc::new(Client {
            slot,
            id: self.next_id,
            ready: Notify::new(),
            peer,
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        self.next_id += 1;
        let conn = Conn {
            client: Arc::clone(&client),
            cursor: self.next,
            skips: VecDeque::new(),
            queued: 0,
            in_flight: 0,
            closed: false,
            writer_waiting: false,
        };
        if slot == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[slot] = Some(conn);
        }
        self.open += 1;
        client
    }

    /// The slot of an open connection whose queue holds `capacity` frames
    /// or more, other than those in `except` (by id).
    pub(super) fn full(&self, capacity: usize, except: &[u64]) -> Option<usize> {
        self.conns.iter().position(|c| {
            c.as_ref().is_some_and(|c| {
                !c.closed && c.queued >= capacity && !except.contains(&c.client.id)
            })
        })
    }

    /// The connection in `slot`, if open.
    pub(super) fn client(&self, slot: usize) -> Option<&Arc<Client>> {
        self.conn(slot).filter(|c| !c.closed).map(|c| &c.client)
    }

    /// Drops the oldest frame queued for the connection in `slot`; whether
    /// there was one.
    pub(super) fn drop_oldest(&mut self, slot: usize) -> bool {
        let Some(c) = self.conn_mut(slot) else {
            return false;
        };
        while c.skips.front() == Some(&c.cursor) {
            c.skips.pop_front();
            c.cursor += 1;
        }
        if c.queued == 0 {
            return false;
        }
        c.cursor += 1;
        c.queued -= 1;
        true
    }

    /// Closes the connection in `slot` (its frames are let go of); its
    /// client, to wake, if it was open.
    pub(super) fn close(
        &mut self,
        slot: usize,
        released: &mut Vec<Arc<Completion>>,
    ) -> Option<Arc<Client>> {
        let c = self.conn_mut(slot)?;
        if c.closed {
            return None;
        }
        c.closed = true;
        c.queued = 0;
        c.skips.clear();
        let client = Arc::clone(&c.client);
        self.open -= 1;
        self.trim(released);
        Some(client)
    }

    /// Forgets the connection in `slot` (closing it first if needed).
    fn remove(&mut self, slot: usize, released: &mut Vec<Arc<Completion>>) {
        self.close(slot, released);
        if let Some(c) = self.conns.get_mut(slot) {
            *c = None;
        }
    }

    /// Appends one frame, written by `write`, for every open connection
    /// but those in `skip` (by id); returns how many it was queued for,
    /// and its completion when that was none (to drop outside the lock).
    /// Writers of connections that waited for frames are added to `wake`.
    pub(super) fn append(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut BytesMut),
        on_done: Option<DoneCallback>,
        skip: &[u64],
        wake: &mut Vec<Arc<Client>>,
    ) -> (usize, Option<Arc<Completion>>) {
        let sequence = self.next;
        self.next += 1;
        let mut queued_for = 0;
        if self.open > 0 {
            if self.tail.capacity() - self.tail.len() < len {
                self.tail.reserve(len.max(TAIL_CHUNK));
            }
            let before = self.tail.len();
            write(&mut self.tail);
            debug_assert_eq!(self.tail.len() - before, len);
            self.ends
                .push_back(self.tail_offset + self.tail.len() as u64);
            for c in self.conns.iter_mut().flatten() {
                if c.closed {
                    continue;
                }
                if skip.contains(&c.client.id) {
                    c.skips.push_back(sequence);
                    continue;
                }
                c.queued += 1;
                queued_for += 1;
                if c.writer_waiting {
                    c.writer_waiting = false;
                    wake.push(Arc::clone(&c.client));
                }
            }
        } else {
            // Nobody to keep it for; nothing is kept either (`trim` let go
            // of every frame when the last connection closed).
            debug_assert!(self.ends.is_empty());
            self.first = self.next;
        }
        let done = on_done.map(|callback| {
            Arc::new(Completion {
                connections: queued_for,
                written: AtomicUsize::new(0),
                callback: Mutex::new(Some(callback)),
            })
        });
        match done {
            Some(done) if queued_for > 0 => {
                self.completions.push_back((sequence, done));
                (queued_for, None)
            }
            lone => (queued_for, lone),
        }
    }

    /// Marks the writer of `slot` as waiting for frames unless some are
    /// queued or the connection closed; whether it is to wait.
    pub(super) fn wait_for_frames(&mut self, slot: usize) -> bool {
        match self.conn_mut(slot) {
            Some(c) if !c.closed && c.queued == 0 => {
                c.writer_waiting = true;
                true
            }
            _ => false,
        }
    }

    /// Where frame `sequence` starts (`first <= sequence <= next`).
    fn offset(&self, sequence: u64) -> u64 {
        match sequence.checked_sub(self.first + 1) {
            None => self.first_offset,
            Some(i) => self
                .ends
                .get(i as usize)
                .copied()
                .unwrap_or(self.first_offset),
        }
    }

    /// Takes up to `max` frames queued for the connection in `slot`, in
    /// order: their bytes are added to `slices`, their completions to
    /// `done`. Frames then taken by every open connection are let go of
    /// (their completions moved to `released`, to drop outside the lock).
    pub(super) fn take(
        &mut self,
        slot: usize,
        max: usize,
        slices: &mut Vec<Bytes>,
        done: &mut Vec<Arc<Completion>>,
        released: &mut Vec<Arc<Completion>>,
    ) -> Taken {
        let next = self.next;
        let Some(c) = self.conn_mut(slot) else {
            return Taken {
                frames: 0,
                closed: true,
            };
        };
        if c.closed {
            return Taken {
                frames: 0,
                closed: true,
            };
        }
        let mut taken = 0;
        while taken < max {
            let Some(c) = self.conn_mut(slot) else { break };
            while c.skips.front() == Some(&c.cursor) {
                c.skips.pop_front();
                c.cursor += 1;
            }
            let from = c.cursor;
            let to = next
                .min(from + (max - taken) as u64)
                .min(c.skips.front().copied().unwrap_or(u64::MAX));
            if to <= from {
                break;
            }
            let frames = (to - from) as usize;
            c.cursor = to;
            c.queued -= frames;
            taken += frames;
            self.add_slices(self.offset(from), self.offset(to), slices);
            let start = self.completions.partition_point(|(s, _)| *s < from);
            for (s, d) in self.completions.range(start..) {
                if *s >= to {
                    break;
                }
                done.push(Arc::clone(d));
            }
        }
        if let Some(c) = self.conn_mut(slot) {
            c.in_flight += taken;
        }
        self.trim(released);
        Taken {
            frames: taken,
            closed: false,
        }
    }

    /// The writer of `slot` wrote what it took.
    pub(super) fn written(&mut self, slot: usize) {
        if let Some(c) = self.conn_mut(slot) {
            c.in_flight = 0;
        }
    }

    /// Adds the bytes `from..to` to `slices`, freezing the tail first when
    /// they reach into it.
    fn add_slices(&mut self, from: u64, to: u64, slices: &mut Vec<Bytes>) {
        if to > self.tail_offset {
            let frozen = self.tail.split().freeze();
            let len = frozen.len() as u64;
            self.segments.push_back((self.tail_offset, frozen));
            self.tail_offset += len;
        }
        let start = self
            .segments
            .partition_point(|(offset, bytes)| offset + bytes.len() as u64 <= from);
        for (offset, bytes) in self.segments.range(start..) {
            if *offset >= to {
                break;
            }
            let lo = (from.max(*offset) - offset) as usize;
            let hi = (to.min(offset + bytes.len() as u64) - offset) as usize;
            slices.push(bytes.slice(lo..hi));
        }
    }

    /// Lets go of the frames every open connection has taken.
    fn trim(&mut self, released: &mut Vec<Arc<Completion>>) {
        let keep_from = self
            .conns
            .iter()
            .flatten()
            .filter(|c| !c.closed)
            .map(|c| c.cursor)
            .min()
            .unwrap_or(self.next);
        while self.first < keep_from {
            let Some(end) = self.ends.pop_front() else {
                break;
            };
            self.first += 1;
            self.first_offset = end;
        }
        if self.ends.is_empty() {
            // Nothing kept: frames sent while nobody was connected count
            // as let go of, and bytes not taken by anyone (a connection
            // closed with frames queued) go, with an oversized buffer.
            self.first = self.first.max(keep_from);
            self.tail_offset += self.tail.len() as u64;
            if self.tail.capacity() > 4 * TAIL_CHUNK {
                self.tail = BytesMut::new();
            } else {
                self.tail.clear();
            }
        }
        while let Some((offset, bytes)) = self.segments.front() {
            if offset + bytes.len() as u64 > self.first_offset {
                break;
            }
            self.segments.pop_front();
        }
        while let Some((s, _)) = self.completions.front() {
            if *s >= keep_from {
                break;
            }
            if let Some((_, d)) = self.completions.pop_front() {
                released.push(d);
            }
        }
    }
}

/// The frames and connections of one publisher, and the condition senders
/// wait on for room and `drain` for empty queues.
pub(super) struct Outbox {
    frames: Mutex<Frames>,
    pub(super) space: Condvar,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            frames: Mutex::new(Frames::new()),
            space: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Frames> {
        self.frames.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection.
    pub(super) fn connect(&self, peer: SocketAddr) -> Arc<Client> {
        self.lock().connect(peer)
    }

    /// Forgets `client`'s connection (after its writer ended): what was
    /// queued for it is dropped (its completions run outside the lock),
    /// waiting senders and `drain` are woken.
    pub(super) fn remove(&self, client: &Client) {
        let mut released = Vec::new();
        self.lock().remove(client.slot, &mut released);
        drop(released);
        self.space.notify_all();
    }

    /// Waits on `space` until `done` holds or `deadline` passes; returns
    /// the guard and whether `done` holds.
    pub(super) fn wait_until<'a>(
        &'a self,
        mut frames: MutexGuard<'a, Frames>,
        deadline: std::time::Instant,
        done: impl Fn(&Frames) -> bool,
    ) -> (MutexGuard<'a, Frames>, bool) {
        while !done(&frames) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (frames, false);
            }
            frames.space_waiters += 1;
            frames = self
                .space
                .wait_timeout(frames, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            frames.space_waiters -= 1;
        }
        (frames, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    /// Appends a frame of `len` bytes of `tag`.
    fn send(f: &mut Frames, tag: u8, len: usize, skip: &[u64]) -> usize {
        let mut wake = Vec::new();
        f.append(
            len,
            |out| out.resize(out.len() + len, tag),
            None,
            skip,
            &mut wake,
        )
        .0
    }

    /// Takes up to `max` frames for `slot`; their bytes, concatenated.
    fn take(f: &mut Frames, slot: usize, max: usize) -> (usize, Vec<u8>) {
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        let taken = f.take(slot, max, &mut slices, &mut done, &mut released);
        f.written(slot);
        (taken.frames, slices.concat())
    }

    fn bytes(frames: &[(u8, usize)]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|&(tag, len)| std::iter::repeat_n(tag, len))
            .collect()
    }

    #[test]
    fn each_connection_takes_every_frame_in_order_and_taken_frames_are_let_go_of() {
        let mut f = Frames::new();
        // Nobody connected: not kept.
        assert_eq!(send(&mut f, 9, 10, &[]), 0);
        let a = f.connect(peer());
        let b = f.connect(peer());
        let sizes = [(1, 3), (2, 200), (3, 1), (4, 125), (5, 70_000)];
        for &(tag, len) in &sizes[..3] {
            assert_eq!(send(&mut f, tag, len, &[]), 2);
        }
        assert_eq!(take(&mut f, a.slot, 2), (2, bytes(&sizes[..2])));
        for &(tag, len) in &sizes[3..] {
            send(&mut f, tag, len, &[]);
        }
        assert_eq!((f.queued(a.slot), f.queued(b.slot)), (3, 5));
        assert_eq!(take(&mut f, a.slot, 100), (3, bytes(&sizes[2..])));
        // `b` has taken nothing: everything is kept for it (from frame 1:
        // frame 0 went to nobody).
        assert_eq!((f.first, f.ends.len()), (1, 5));
        assert_eq!(take(&mut f, b.slot, 4), (4, bytes(&sizes[..4])));
        assert_eq!((f.first, f.ends.len()), (5, 1));
        assert_eq!(take(&mut f, b.slot, 4), (1, bytes(&sizes[4..])));
        assert_eq!(take(&mut f, b.slot, 4), (0, Vec::new()));
        assert!(f.idle());
        assert!(f.ends.is_empty() && f.segments.is_empty());
    }

    #[test]
    fn dropped_and_skipped_frames_are_one_connections_alone() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        for tag in 0..4 {
            send(&mut f, tag, 10, &[]);
        }
        // DropOldest for `a`: its frame 0 goes; `b` keeps it.
        assert!(f.drop_oldest(a.slot));
        assert_eq!(f.queued(a.slot), 3);
        // A sender gave up on `b` for frame 4 (as after a Wait timeout).
        assert_eq!(send(&mut f, 4, 10, &[b.id]), 1);
        send(&mut f, 5, 10, &[]);
        assert_eq!(f.queued(b.slot), 5);
        assert_eq!(
            take(&mut f, a.slot, 100),
            (5, bytes(&[(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)]))
        );
        // Taken around the skipped frame, in two ranges.
        assert_eq!(
            take(&mut f, b.slot, 100),
            (5, bytes(&[(0, 10), (1, 10), (2, 10), (3, 10), (5, 10)]))
        );
        // Dropping the oldest steps over skipped frames.
        send(&mut f, 6, 10, &[b.id]);
        send(&mut f, 7, 10, &[]);
        assert!(f.drop_oldest(b.slot));
        assert!(!f.drop_oldest(b.slot));
        assert_eq!(take(&mut f, b.slot, 100), (0, Vec::new()));
        assert_eq!(take(&mut f, a.slot, 100), (2, bytes(&[(6, 10), (7, 10)])));
        assert!(f.ends.is_empty());
    }

    #[test]
    fn a_closed_connection_holds_nothing_back_and_its_slot_is_reused() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        send(&mut f, 1, 10, &[]);
        let mut released = Vec::new();
        assert!(f.close(b.slot, &mut released).is_some());
        assert!(f.close(b.slot, &mut released).is_none());
        assert!(f.full(1, &[]).is_some_and(|s| s == a.slot));
        assert_eq!(take(&mut f, a.slot, 100), (1, bytes(&[(1, 10)])));
        assert!(f.ends.is_empty());
        assert!(
            f.take(b.slot, 1, &mut Vec::new(), &mut Vec::new(), &mut released)
                .closed
        );
        f.remove(b.slot, &mut released);
        let c = f.connect(peer());
        assert_eq!(c.slot, b.slot);
        assert_ne!(c.id, b.id);
        send(&mut f, 2, 5, &[]);
        assert_eq!(take(&mut f, c.slot, 100), (1, bytes(&[(2, 5)])));
    }

    #[test]
    fn a_completion_runs_once_every_connection_wrote_or_dropped_its_frame() {
        let outcome = Arc::new(Mutex::new(None));
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        let o = Arc::clone(&outcome);
        let mut wake = Vec::new();
        let (queued, lone) = f.append(
            4,
            |out| out.extend_from_slice(b"abcd"),
            Some(Box::new(move |r| *o.lock().unwrap() = Some(r))),
            &[],
            &mut wake,
        );
        assert_eq!(queued, 2);
        assert!(lone.is_none());
        // `a` writes it; `b` has it dropped.
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        f.take(a.slot, 10, &mut slices, &mut done, &mut released);
        assert_eq!(done.len(), 1);
        done[0]
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(done);
        assert!(f.drop_oldest(b.slot));
        assert!(outcome.lock().unwrap().is_none());
        f.take(b.slot, 10, &mut slices, &mut Vec::new(), &mut released);
        assert_eq!(released.len(), 1);
        drop(released);
        assert_eq!(
            *outcome.lock().unwrap(),
            Some(SendOutcome {
                connections: 2,
                written: 1
            })
        );
        // Queued for nobody: the completion comes back to the sender.
        f.remove(a.slot, &mut Vec::new());
        f.remove(b.slot, &mut Vec::new());
        let (queued, lone) = f.append(1, |out| out.extend_from_slice(b"x"), None, &[], &mut wake);
        assert_eq!((queued, lone.is_none()), (0, true));
    }

    #[test]
    fn a_waiting_writer_is_woken_once_by_the_next_frame() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        assert!(f.wait_for_frames(a.slot));
        let mut wake = Vec::new();
        f.append(1, |out| out.extend_from_slice(b"x"), None, &[], &mut wake);
        f.append(1, |out| out.extend_from_slice(b"y"), None, &[], &mut wake);
        assert_eq!(wake.len(), 1);
        assert!(!f.wait_for_frames(a.slot));
    }
}
