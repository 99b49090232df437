//! What a publisher has sent and its connections have not all taken yet:
//! every frame is appended once to one buffer that every connection reads
//! (one copy and one lock per send, whatever the number of subscribers),
//! with a cursor per connection; the slow-receiver policies move one
//! connection's cursor (dropping its oldest frame) or close it; each
//! message's completion runs when its last copy is written or dropped.
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

use bytes::{Buf, Bytes, BytesMut};
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
const TAIL_CHUNK: usize = 64 << 10;

/// Bytes past the last frame whose cache lines an append asks for.
const PREFETCH_AHEAD: usize = 256;

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
    /// Frames queued for it: from `cursor` to the newest.
    queued: usize,
    /// Taken by its writer and not written yet.
    in_flight: usize,
    closed: bool,
    /// Its writer waits for frames (then a sender wakes it).
    writer_waiting: bool,
    /// A sender waits for room in its queue: the writer's next take wakes
    /// senders (once; a sender still short of room sets it again).
    room_wanted: bool,
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
    /// A buffer no slice refers to any more, handed back by a writer, for
    /// the tail's next chunk (fresh memory would cost page faults).
    spare: Option<BytesMut>,
    /// Completions of frames kept, by sequence number (ascending).
    completions: VecDeque<(u64, Arc<Completion>)>,
    conns: Vec<Option<Conn>>,
    /// Connections not closed.
    open: usize,
    next_id: u64,
    /// Threads in [`Outbox::wait_idle`] (woken when a writer has written
    /// what it took).
    idle_waiters: usize,
}

/// What [`Frames::take`] took.
pub(super) struct Taken {
    /// Frames taken.
    pub(super) frames: usize,
    /// The connection is closed (nothing taken).
    pub(super) closed: bool,
    /// A sender waited for room in this connection's queue, which the take
    /// made: wake senders.
    pub(super) room_made: bool,
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
            spare: None,
            completions: VecDeque::new(),
            conns: Vec::new(),
            open: 0,
            next_id: 0,
            idle_waiters: 0,
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

    /// Whether the connection in `slot` is closed (or gone).
    pub(super) fn is_closed(&self, slot: usize) -> bool {
        self.conn(slot).is_none_or(|c| c.closed)
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
            queued: 0,
            in_flight: 0,
            closed: false,
            writer_waiting: false,
            room_wanted: false,
        };
        if slot == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[slot] = Some(conn);
        }
        self.open += 1;
        client
    }

    /// The slot of the first open connection whose queue holds
    /// `capacity` frames or more.
    pub(super) fn full(&self, capacity: usize) -> Option<usize> {
        self.conns.iter().position(|c| {
            c.as_ref()
                .is_some_and(|c| !c.closed && c.queued >= capacity)
        })
    }

    /// Connections from their handshake until their task ended (closed
    /// ones included), with the frames queued for each.
    pub(super) fn connections(&self) -> impl Iterator<Item = (&Client, usize)> {
        self.conns.iter().flatten().map(|c| (&*c.client, c.queued))
    }

    /// Frames queued for `client`'s connection (0 when it is gone).
    #[cfg(test)]
    pub(super) fn queued_for(&self, client: &Client) -> usize {
        self.conn(client.slot)
            .filter(|c| c.client.id == client.id)
            .map_or(0, |c| c.queued)
    }

    /// The connection in `slot`, if open.
    pub(super) fn client(&self, slot: usize) -> Option<&Arc<Client>> {
        self.conn(slot).filter(|c| !c.closed).map(|c| &c.client)
    }

    /// Drops the oldest frame queued for the connection in `slot`; whether
    /// there was one. What no open connection needs any more is let go of
    /// (completions moved to `released`, to drop outside the lock).
    pub(super) fn drop_oldest(&mut self, slot: usize, released: &mut Vec<Arc<Completion>>) -> bool {
        let Some(c) = self.conn_mut(slot) else {
            return false;
        };
        if c.closed || c.queued == 0 {
            return false;
        }
        c.cursor += 1;
        c.queued -= 1;
        self.trim(released);
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

    /// Appends one frame of `len` bytes, written by `write`, for every
    /// open connection; returns how many it was queued for, and its
    /// completion when that was none (to drop outside the lock). Writers of
    /// connections that waited for frames are added to `wake`.
    pub(super) fn append(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut BytesMut),
        on_done: Option<DoneCallback>,
        wake: &mut Vec<Arc<Client>>,
    ) -> (usize, Option<Arc<Completion>>) {
        let sequence = self.next;
        self.next += 1;
        let mut queued_for = 0;
        if self.open > 0 {
            if self.tail.capacity() - self.tail.len() < len {
                // Frozen first, so that growing copies nothing.
                self.freeze();
                if let Some(mut spare) = self.spare.take() {
                    spare.clear();
                    self.tail = spare;
                }
                self.tail.reserve(len.max(TAIL_CHUNK));
            }
            let before = self.tail.len();
            write(&mut self.tail);
            debug_assert_eq!(self.tail.len() - before, len);
            self.ends
                .push_back(self.tail_offset + self.tail.len() as u64);
            // The next frames' lines, asked for now (for writing): they
            // were last read by a writer's core (a socket write), and the
            // lock's release after this append would otherwise wait for
            // their transfer.
            let end = self.tail.len();
            for ahead in (0..PREFETCH_AHEAD).step_by(64) {
                if end + ahead < self.tail.capacity() {
                    crate::prefetch::write(self.tail.as_ptr().wrapping_add(end + ahead));
                }
            }
            for c in self.conns.iter_mut().flatten() {
                if c.closed {
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

    /// The writer of `slot` wrote everything it took, and asks for more:
    /// marks it as waiting for frames unless some are queued or the
    /// connection closed. Whether it is to wait, and whether `drain`
    /// waits for the queues to empty (to wake). `recycled`, a buffer of frames it
    /// wrote that nothing refers to any more ([`recycle`]), is kept for
    /// the tail's next chunk; one not kept comes back (to drop outside the
    /// lock).
    pub(super) fn written_and_ready(
        &mut self,
        slot: usize,
        recycled: &mut Option<BytesMut>,
    ) -> (bool, bool) {
        if self.spare.is_none() {
            self.spare = recycled.take();
        }
        let waiters = self.idle_waiters > 0;
        match self.conn_mut(slot) {
            Some(c) => {
                c.in_flight = 0;
                let wait = !c.closed && c.queued == 0;
                c.writer_waiting = wait;
                (wait, waiters)
            }
            None => (false, waiters),
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
                room_made: false,
            };
        };
        if c.closed {
            return Taken {
                frames: 0,
                closed: true,
                room_made: false,
            };
        }
        let from = c.cursor;
        let to = next.min(from.saturating_add(max as u64));
        let taken = (to - from) as usize;
        c.cursor = to;
        c.queued -= taken;
        c.in_flight += taken;
        let room_made = taken > 0 && std::mem::take(&mut c.room_wanted);
        if taken > 0 {
            self.add_slices(self.offset(from), self.offset(to), slices);
            let start = self.completions.partition_point(|(s, _)| *s < from);
            for (s, d) in self.completions.range(start..) {
                if *s >= to {
                    break;
                }
                done.push(Arc::clone(d));
            }
            self.trim(released);
        }
        Taken {
            frames: taken,
            closed: false,
            room_made,
        }
    }

    /// Adds the bytes `from..to` to `slices`, freezing the tail first when
    /// they reach into it.
    fn add_slices(&mut self, from: u64, to: u64, slices: &mut Vec<Bytes>) {
        if to > self.tail_offset {
            self.freeze();
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

    /// Moves what the tail holds into a segment of its own (the rest of
    /// the tail's buffer stays for the next frames).
    fn freeze(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let frozen = self.tail.split().freeze();
        let len = frozen.len() as u64;
        self.segments.push_back((self.tail_offset, frozen));
        self.tail_offset += len;
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
        // In one step (a writer's take lets go of a batch at once, under
        // the lock senders wait for).
        let done = usize::try_from(keep_from.saturating_sub(self.first))
            .unwrap_or(usize::MAX)
            .min(self.ends.len());
        if let Some(&end) = done.checked_sub(1).and_then(|last| self.ends.get(last)) {
            self.ends.drain(..done);
            self.first += done as u64;
            self.first_offset = end;
        }
        if self.ends.is_empty() {
            // Frames sent while nobody was connected were never kept.
            self.first = self.first.max(keep_from);
        }
        while let Some((offset, bytes)) = self.segments.front() {
            if offset + bytes.len() as u64 > self.first_offset {
                break;
            }
            self.segments.pop_front();
        }
        // Frames let go of before any writer took them (dropped as the
        // oldest of every queue, or queued for a connection that closed)
        // may start the tail.
        if self.first_offset > self.tail_offset {
            let n = (self.first_offset - self.tail_offset).min(self.tail.len() as u64);
            self.tail.advance(n as usize);
            self.tail_offset += n;
        }
        if self.ends.is_empty() && self.tail.capacity() > 4 * TAIL_CHUNK {
            // Nothing kept: a buffer grown for a large frame goes.
            self.tail = BytesMut::new();
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

/// Lets go of the slices a writer wrote; the buffer of the last one, when
/// nothing else refers to it any more (every connection took its frames
/// and the tail moved on to another), for [`Frames::written_and_ready`].
pub(super) fn recycle(slices: &mut Vec<Bytes>) -> Option<BytesMut> {
    let mut buffer = None;
    for slice in slices.drain(..) {
        if let Ok(unique) = slice.try_into_mut() {
            buffer = Some(unique);
        }
    }
    // Not a buffer grown for a large frame.
    buffer.filter(|b| b.capacity() <= 4 * TAIL_CHUNK)
}

/// The frames and connections of one publisher, and the conditions
/// senders wait on for room and `drain` for empty queues.
pub(super) struct Outbox {
    frames: Mutex<Frames>,
    /// Senders wait here for room ([`Outbox::wait_for_room`]).
    pub(super) space: Condvar,
    /// `drain` waits here for every queue to empty ([`Outbox::wait_idle`]),
    /// apart from senders, so that neither is woken for the other.
    pub(super) idle: Condvar,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            frames: Mutex::new(Frames::new()),
            space: Condvar::new(),
            idle: Condvar::new(),
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
        self.idle.notify_all();
    }

    /// Waits on `space` until the queue of `client`'s connection holds
    /// fewer than `capacity` frames (or the connection is gone) or
    /// `deadline` passes; returns the guard and whether there is room. Only
    /// that connection's writer wakes the wait (or a connection leaving), so
    /// room made for the others costs it no wake-up.
    pub(super) fn wait_for_room<'a>(
        &'a self,
        mut frames: MutexGuard<'a, Frames>,
        client: &Client,
        capacity: usize,
        deadline: std::time::Instant,
    ) -> (MutexGuard<'a, Frames>, bool) {
        loop {
            match frames
                .conn_mut(client.slot)
                .filter(|c| c.client.id == client.id && !c.closed)
            {
                Some(c) if c.queued >= capacity => c.room_wanted = true,
                _ => return (frames, true),
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (frames, false);
            }
            frames = self
                .space
                .wait_timeout(frames, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits on `idle` until every open connection has written all that
    /// was queued for it ([`Frames::idle`]) or `deadline` passes; whether
    /// it has.
    pub(super) fn wait_idle(&self, deadline: std::time::Instant) -> bool {
        let mut frames = self.lock();
        while !frames.idle() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            frames.idle_waiters += 1;
            frames = self
                .idle
                .wait_timeout(frames, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            frames.idle_waiters -= 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    /// Appends a frame of `len` bytes of `tag`; how many it was queued for.
    fn send(f: &mut Frames, tag: u8, len: usize) -> usize {
        let mut wake = Vec::new();
        f.append(len, |out| out.resize(out.len() + len, tag), None, &mut wake)
            .0
    }

    /// Takes up to `max` frames for `slot` and writes them; their bytes,
    /// concatenated.
    fn take(f: &mut Frames, slot: usize, max: usize) -> (usize, Vec<u8>) {
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        let taken = f.take(slot, max, &mut slices, &mut done, &mut released);
        let bytes = slices.concat();
        // As a writer does: its buffer back to the outbox when nobody else
        // refers to it.
        f.written_and_ready(slot, &mut recycle(&mut slices));
        (taken.frames, bytes)
    }

    /// Waits up to 10 s for `thread` to end; a thread woken as it should
    /// be ends at once, where one left sleeping would wait out its own
    /// deadline (60 s), so this tells a wake-up from a timeout.
    fn woken<T>(thread: &std::thread::ScopedJoinHandle<'_, T>) -> bool {
        let start = std::time::Instant::now();
        while !thread.is_finished() {
            if start.elapsed().as_secs() >= 10 {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    fn bytes(frames: &[(u8, usize)]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|&(tag, len)| std::iter::repeat_n(tag, len))
            .collect()
    }

    /// Bytes the outbox itself holds (segments and tail).
    fn held(f: &Frames) -> usize {
        f.segments.iter().map(|(_, b)| b.len()).sum::<usize>() + f.tail.len()
    }

    #[test]
    fn each_connection_takes_every_frame_in_order_and_taken_frames_are_let_go_of() {
        let mut f = Frames::new();
        // Nobody connected: not kept.
        assert_eq!(send(&mut f, 9, 10), 0);
        let a = f.connect(peer());
        let b = f.connect(peer());
        // The last one larger than the buffer grows by.
        let sizes = [(1, 3), (2, 200), (3, 1), (4, 125), (5, TAIL_CHUNK + 7)];
        for &(tag, len) in &sizes[..3] {
            assert_eq!(send(&mut f, tag, len), 2);
        }
        assert_eq!(take(&mut f, a.slot, 2), (2, bytes(&sizes[..2])));
        for &(tag, len) in &sizes[3..] {
            send(&mut f, tag, len);
        }
        assert_eq!((f.queued_for(&a), f.queued_for(&b)), (3, 5));
        assert_eq!(take(&mut f, a.slot, 100), (3, bytes(&sizes[2..])));
        // `b` has taken nothing: everything is kept for it (from frame 1:
        // frame 0 went to nobody).
        assert_eq!((f.first, f.ends.len()), (1, 5));
        assert_eq!(take(&mut f, b.slot, 4), (4, bytes(&sizes[..4])));
        assert_eq!((f.first, f.ends.len()), (5, 1));
        assert_eq!(take(&mut f, b.slot, 4), (1, bytes(&sizes[4..])));
        assert_eq!(take(&mut f, b.slot, 4), (0, Vec::new()));
        assert!(f.idle());
        assert_eq!((f.ends.len(), held(&f)), (0, 0));
        // A connection that joins gets what is sent from then on.
        send(&mut f, 6, 4);
        let c = f.connect(peer());
        send(&mut f, 7, 4);
        assert_eq!(take(&mut f, c.slot, 9), (1, bytes(&[(7, 4)])));
        assert_eq!(take(&mut f, a.slot, 9), (2, bytes(&[(6, 4), (7, 4)])));
        assert_eq!(take(&mut f, b.slot, 9), (2, bytes(&[(6, 4), (7, 4)])));
        assert_eq!(held(&f), 0);
    }

    #[test]
    fn dropping_the_oldest_is_one_connections_alone_and_keeps_memory_bounded() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        let mut released = Vec::new();
        for tag in 0..4 {
            send(&mut f, tag, 10);
        }
        // `a`'s frame 0 goes; `b` keeps it.
        assert!(f.drop_oldest(a.slot, &mut released));
        assert_eq!(f.queued_for(&a), 3);
        assert_eq!(
            take(&mut f, a.slot, 100),
            (3, bytes(&[(1, 10), (2, 10), (3, 10)]))
        );
        assert_eq!(
            take(&mut f, b.slot, 100),
            (4, bytes(&[(0, 10), (1, 10), (2, 10), (3, 10)]))
        );
        assert!(!f.drop_oldest(b.slot, &mut released));
        // `b` never reads again (its writer is stuck): as a publisher with
        // a queue of 16 does, every send drops its oldest once full; `a`
        // takes everything. What is kept stays within `b`'s queue.
        for i in 0..10_000u32 {
            if f.queued_for(&b) >= 16 {
                assert!(f.drop_oldest(b.slot, &mut released));
            }
            send(&mut f, (i % 251) as u8, 100);
            if i % 7 == 0 {
                take(&mut f, a.slot, 256);
            }
        }
        take(&mut f, a.slot, 256);
        assert_eq!(f.queued_for(&b), 16);
        assert_eq!(f.ends.len(), 16);
        // The frames of its queue, and the rest of the segment the oldest
        // of them is in (segments go whole; `a` took at most 7 frames at a
        // time).
        assert!(held(&f) <= (16 + 7) * 100, "{} bytes held", held(&f));
        // What `b` gets are the newest 16.
        let (n, got) = take(&mut f, b.slot, 100);
        let newest: Vec<(u8, usize)> = (9_984..10_000u32).map(|i| ((i % 251) as u8, 100)).collect();
        assert_eq!((n, got), (16, bytes(&newest)));
        assert_eq!(held(&f), 0);
        // `b` alone, stuck again: nobody takes anything, so what is dropped
        // was never frozen; the buffer's front goes as its frames do.
        f.close(a.slot, &mut released);
        for i in 0..10_000u32 {
            if f.queued_for(&b) >= 16 {
                assert!(f.drop_oldest(b.slot, &mut released));
            }
            send(&mut f, (i % 251) as u8, 100);
        }
        assert_eq!((f.queued_for(&b), f.ends.len()), (16, 16));
        assert_eq!((f.segments.len(), held(&f)), (0, 16 * 100));
        assert_eq!(take(&mut f, b.slot, 100), (16, bytes(&newest)));
    }

    #[test]
    fn a_closed_connection_holds_nothing_back_and_its_slot_is_reused() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        for _ in 0..100 {
            send(&mut f, 1, 10);
        }
        let mut released = Vec::new();
        assert_eq!(take(&mut f, a.slot, 1000).0, 100);
        assert_eq!(held(&f), 1000);
        assert!(f.close(b.slot, &mut released).is_some());
        assert!(f.close(b.slot, &mut released).is_none());
        assert_eq!((f.ends.len(), held(&f)), (0, 0));
        assert_eq!(f.full(1), None);
        send(&mut f, 2, 10);
        assert_eq!(f.full(1), Some(a.slot));
        assert!(
            f.take(b.slot, 1, &mut Vec::new(), &mut Vec::new(), &mut released)
                .closed
        );
        f.remove(b.slot, &mut released);
        let c = f.connect(peer());
        assert_eq!(c.slot, b.slot);
        assert_ne!(c.id, b.id);
        // The old client's slot is not the new connection's.
        assert_eq!((f.queued_for(&b), f.queued_for(&c)), (0, 0));
        send(&mut f, 3, 5);
        assert_eq!(f.queued_for(&c), 1);
        assert_eq!(take(&mut f, c.slot, 100), (1, bytes(&[(3, 5)])));
        assert_eq!(take(&mut f, a.slot, 100), (2, bytes(&[(2, 10), (3, 5)])));
    }

    #[test]
    fn in_flight_frames_keep_a_connection_busy_until_written() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        send(&mut f, 1, 10);
        send(&mut f, 2, 10);
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        assert_eq!(
            f.take(a.slot, 1, &mut slices, &mut done, &mut released)
                .frames,
            1
        );
        assert_eq!(
            f.take(a.slot, 1, &mut slices, &mut done, &mut released)
                .frames,
            1
        );
        // Taken, not written: not idle; the slices stay valid.
        assert!(!f.idle());
        assert_eq!(slices.concat(), bytes(&[(1, 10), (2, 10)]));
        assert_eq!(f.written_and_ready(a.slot, &mut None), (true, false));
        assert!(f.idle());
    }

    #[test]
    fn a_completion_runs_once_every_connection_wrote_or_dropped_its_frame() {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let on_done = |o: &Arc<Mutex<Vec<SendOutcome>>>| -> Option<DoneCallback> {
            let o = Arc::clone(o);
            Some(Box::new(move |r| o.lock().unwrap().push(r)))
        };
        let mut f = Frames::new();
        let a = f.connect(peer());
        let b = f.connect(peer());
        let mut wake = Vec::new();
        let (queued, lone) = f.append(
            4,
            |out| out.extend_from_slice(b"abcd"),
            on_done(&outcomes),
            &mut wake,
        );
        assert_eq!(queued, 2);
        assert!(lone.is_none());
        // `a` takes and writes it.
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        f.take(a.slot, 10, &mut slices, &mut done, &mut released);
        assert_eq!(done.len(), 1);
        assert!(released.is_empty());
        done[0].written.fetch_add(1, Ordering::Relaxed);
        drop(done);
        assert!(outcomes.lock().unwrap().is_empty());
        // `b` has it dropped: the outbox lets go of it at once.
        assert!(f.drop_oldest(b.slot, &mut released));
        assert_eq!(released.len(), 1);
        assert!(outcomes.lock().unwrap().is_empty());
        drop(released);
        assert_eq!(
            *outcomes.lock().unwrap(),
            [SendOutcome {
                connections: 2,
                written: 1
            }]
        );
        // Queued for a connection that closes before writing it.
        let mut released = Vec::new();
        f.append(
            1,
            |out| out.extend_from_slice(b"x"),
            on_done(&outcomes),
            &mut wake,
        );
        f.take(a.slot, 10, &mut Vec::new(), &mut Vec::new(), &mut released);
        assert!(released.is_empty());
        f.close(b.slot, &mut released);
        drop(released);
        assert_eq!(
            outcomes.lock().unwrap()[1],
            SendOutcome {
                connections: 2,
                written: 0
            }
        );
        // Queued for nobody: the completion comes back to the sender.
        f.remove(a.slot, &mut Vec::new());
        f.remove(b.slot, &mut Vec::new());
        let (queued, lone) = f.append(
            1,
            |out| out.extend_from_slice(b"y"),
            on_done(&outcomes),
            &mut wake,
        );
        assert_eq!(queued, 0);
        drop(lone.expect("the sender's to drop"));
        assert_eq!(
            outcomes.lock().unwrap()[2],
            SendOutcome {
                connections: 0,
                written: 0
            }
        );
    }

    #[test]
    fn a_waiting_writer_is_woken_once_by_the_next_frame() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        assert_eq!(f.written_and_ready(a.slot, &mut None), (true, false));
        let mut wake = Vec::new();
        f.append(1, |out| out.extend_from_slice(b"x"), None, &mut wake);
        f.append(1, |out| out.extend_from_slice(b"y"), None, &mut wake);
        assert_eq!(wake.len(), 1);
        assert_eq!(f.written_and_ready(a.slot, &mut None), (false, false));
    }

    #[test]
    fn only_a_take_from_the_full_queue_a_sender_waits_on_wakes_it() {
        let outbox = Outbox::new();
        let (a, b) = (outbox.connect(peer()), outbox.connect(peer()));
        for _ in 0..2 {
            send(&mut outbox.lock(), 1, 10);
        }
        let waiting_for_a =
            |outbox: &Outbox| outbox.lock().conn(a.slot).is_some_and(|c| c.room_wanted);
        std::thread::scope(|s| {
            let sender = s.spawn(|| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                outbox.wait_for_room(outbox.lock(), &a, 2, deadline).1
            });
            let start = std::time::Instant::now();
            while !waiting_for_a(&outbox) {
                assert!(start.elapsed().as_secs() < 20, "the sender never waited");
                std::thread::yield_now();
            }
            let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
            // Room in another queue: not what the sender waits for.
            let taken = outbox
                .lock()
                .take(b.slot, 1, &mut slices, &mut done, &mut released);
            assert_eq!((taken.frames, taken.room_made), (1, false));
            // Room in its queue: wake it, once.
            let taken = outbox
                .lock()
                .take(a.slot, 1, &mut slices, &mut done, &mut released);
            assert_eq!((taken.frames, taken.room_made), (1, true));
            outbox.space.notify_all();
            assert!(woken(&sender), "the sender slept on");
            assert!(sender.join().unwrap(), "room in a's queue");
            let taken = outbox
                .lock()
                .take(a.slot, 1, &mut slices, &mut done, &mut released);
            assert_eq!((taken.frames, taken.room_made), (1, false));
        });
        // A full queue and no time left: no room.
        send(&mut outbox.lock(), 1, 10);
        let now = std::time::Instant::now();
        assert!(!outbox.wait_for_room(outbox.lock(), &a, 1, now).1);
        // The connection gone: the wait ends at once.
        outbox.remove(&a);
        let later = now + std::time::Duration::from_secs(20);
        assert!(outbox.wait_for_room(outbox.lock(), &a, 1, later).1);
    }

    #[test]
    fn drain_waits_apart_and_is_woken_by_the_write_that_empties_the_queues() {
        let outbox = Outbox::new();
        let a = outbox.connect(peer());
        send(&mut outbox.lock(), 1, 10);
        let (mut slices, mut done, mut released) = (Vec::new(), Vec::new(), Vec::new());
        outbox
            .lock()
            .take(a.slot, 8, &mut slices, &mut done, &mut released);
        std::thread::scope(|s| {
            let drain = s.spawn(|| {
                outbox.wait_idle(std::time::Instant::now() + std::time::Duration::from_secs(60))
            });
            let start = std::time::Instant::now();
            while outbox.lock().idle_waiters == 0 {
                assert!(start.elapsed().as_secs() < 20, "drain never waited");
                std::thread::yield_now();
            }
            // Not a wait for room: a take would not wake it.
            assert!(!outbox.lock().conn(a.slot).is_some_and(|c| c.room_wanted));
            // The frame taken is written: the writer is told to wake it.
            let (wait, wake_drain) = outbox.lock().written_and_ready(a.slot, &mut None);
            assert_eq!((wait, wake_drain), (true, true));
            outbox.idle.notify_all();
            assert!(woken(&drain), "drain slept on");
            assert!(drain.join().unwrap());
        });
        assert_eq!(outbox.lock().idle_waiters, 0);
    }

    #[test]
    fn a_buffer_every_writer_is_done_with_is_reused_for_the_next_chunk() {
        let mut f = Frames::new();
        let a = f.connect(peer());
        let frame = 1000;
        let per_chunk = TAIL_CHUNK / frame;
        send(&mut f, 7, frame);
        let first_buffer = f.tail.as_ptr();
        // A chunk's worth and one more: the tail moves on to a new buffer.
        for _ in 0..per_chunk {
            send(&mut f, 7, frame);
        }
        let mut slices = Vec::new();
        let (mut done, mut released) = (Vec::new(), Vec::new());
        f.take(a.slot, per_chunk + 1, &mut slices, &mut done, &mut released);
        assert_eq!(slices.concat(), vec![7; (per_chunk + 1) * frame]);
        let mut recycled = recycle(&mut slices);
        assert!(slices.is_empty());
        assert!(recycled.is_some(), "the first buffer is nobody's now");
        f.written_and_ready(a.slot, &mut recycled);
        assert!(recycled.is_none() && f.spare.is_some());
        // Filling the second buffer moves the tail back to the first.
        for _ in 0..per_chunk {
            send(&mut f, 8, frame);
        }
        assert!(f.spare.is_none());
        assert_eq!(f.tail.as_ptr(), first_buffer);
        let (n, bytes) = take(&mut f, a.slot, 10_000);
        assert_eq!((n, bytes), (per_chunk, vec![8; per_chunk * frame]));
        // A buffer a slice still refers to is not handed back.
        send(&mut f, 9, frame);
        let mut slices = Vec::new();
        f.take(a.slot, 1, &mut slices, &mut done, &mut released);
        let kept = slices[0].clone();
        assert!(recycle(&mut slices).is_none());
        drop(kept);
    }

    /// A connection of the model: its client and the frames it is to get.
    type ModelConn = (Arc<Client>, VecDeque<Vec<u8>>);

    proptest::proptest! {
        /// Any mix of joins, sends (some larger than the growth chunk),
        /// takes, drops, closes and leaves: each connection gets exactly
        /// the frames a model says, in order; the outbox keeps no more than
        /// the longest open queue; every completion runs once.
        #[test]
        fn any_sequence_of_operations_matches_a_model(
            ops in proptest::collection::vec((0u8..6, 0u8..4, 1u32..400), 1..300),
        ) {
            let ran = Arc::new(AtomicUsize::new(0));
            let mut with_callback = 0;
            let mut f = Frames::new();
            let mut conns: Vec<Option<ModelConn>> = Vec::new();
            let mut tag = 0u8;
            let mut released = Vec::new();
            for (kind, which, n) in ops {
                let open: Vec<usize> = (0..conns.len()).filter(|&i| conns[i].is_some()).collect();
                let pick = (!open.is_empty()).then(|| open[usize::from(which) % open.len()]);
                match (kind, pick) {
                    (0, _) => conns.push(Some((f.connect(peer()), VecDeque::new()))),
                    (1, _) => {
                        tag = tag.wrapping_add(1);
                        let len = if n % 50 == 0 { TAIL_CHUNK + n as usize } else { n as usize };
                        let frame = vec![tag; len];
                        let r = Arc::clone(&ran);
                        let on_done: Option<DoneCallback> = (n % 3 == 0).then(|| {
                            with_callback += 1;
                            Box::new(move |_| {
                                r.fetch_add(1, Ordering::Relaxed);
                            }) as DoneCallback
                        });
                        let (queued, lone) = f.append(
                            len,
                            |out| out.extend_from_slice(&frame),
                            on_done,
                            &mut Vec::new(),
                        );
                        drop(lone);
                        proptest::prop_assert_eq!(queued, open.len());
                        for (_, q) in conns.iter_mut().flatten() {
                            q.push_back(frame.clone());
                        }
                    }
                    (2, Some(i)) => {
                        let Some((c, q)) = conns[i].as_mut() else { unreachable!() };
                        let max = n as usize % 20;
                        let expected = max.min(q.len());
                        let (taken, bytes) = take(&mut f, c.slot, max);
                        let want: Vec<u8> = q.drain(..expected).flatten().collect();
                        proptest::prop_assert_eq!(taken, expected);
                        proptest::prop_assert_eq!(bytes, want);
                    }
                    (3, Some(i)) => {
                        let Some((c, q)) = conns[i].as_mut() else { unreachable!() };
                        let dropped = f.drop_oldest(c.slot, &mut released);
                        proptest::prop_assert_eq!(dropped, q.pop_front().is_some());
                    }
                    (4, Some(i)) => {
                        let Some((c, _)) = conns[i].take() else { unreachable!() };
                        if n % 2 == 0 {
                            f.close(c.slot, &mut released);
                        }
                        f.remove(c.slot, &mut released);
                    }
                    _ => {}
                }
                released.clear();
                for (c, q) in conns.iter().flatten() {
                    proptest::prop_assert_eq!(f.queued_for(c), q.len());
                }
                let longest = conns.iter().flatten().map(|(_, q)| q.len()).max().unwrap_or(0);
                proptest::prop_assert_eq!(f.ends.len(), longest);
                proptest::prop_assert_eq!(f.next - f.first, longest as u64);
            }
            for (c, _) in conns.iter().flatten() {
                f.remove(c.slot, &mut released);
            }
            drop(released);
            proptest::prop_assert_eq!(held(&f), 0);
            proptest::prop_assert_eq!(ran.load(Ordering::Relaxed), with_callback);
        }
    }
}
