//! Shared helpers for shmidl's end-to-end tests: unique segment names, child
//! processes with deadlines, and the child binary's protocol.
//!
//! Tests spawn the `shmidl-test-child` binary (real processes, not threads),
//! pass it a scenario and names on the command line, and read its answers on
//! stdout, one `key=value` line each.

use std::{
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

/// A segment name no other test (or test run) uses: `t-<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts the child binary `exe` with `args`, stdout captured.
pub fn spawn_child(exe: &str, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {exe}: {e}"))
}

/// Waits for `child` until `deadline`; kills it and panics if it is late,
/// so a hung child fails the test instead of stalling CI.
pub fn wait_with_deadline(mut child: Child, deadline: Instant) -> Output {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collecting child output"),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let out = child.wait_with_output();
                panic!("child did not finish before its deadline: {out:?}");
            }
            Err(e) => panic!("waiting for child: {e}"),
        }
    }
}

/// The value of `key=` in a child's stdout.
pub fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Waits until the child prints a line `key=value` (or closes stdout, or
/// `timeout` passes) and returns the value. The child keeps running; the
/// rest of its output is read and discarded.
pub fn read_field(child: &mut Child, key: &str, timeout: Duration) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take()?;
    let key = key.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Keep reading to the end so the child never writes into a closed
        // pipe; only the first matching line is reported.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix(&key).and_then(|r| r.strip_prefix('=')) {
                let _ = tx.send(v.to_owned());
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_micros(200));
    }
    cond()
}

/// A pool payload whose destructor counts itself in shared memory, so a
/// test can prove an object was dropped exactly once across processes.
#[repr(C)]
#[derive(Debug, shmidl::ShmMessage)]
#[shm(name = "shmidl_tests.Counted")]
pub struct Counted {
    /// Payload.
    pub value: u64,
    /// `!value`, to detect torn or foreign contents.
    pub check: u64,
}

impl Counted {
    /// A value with its check word.
    pub fn new(value: u64) -> Self {
        Self {
            value,
            check: !value,
        }
    }

    /// Whether the check word matches.
    pub fn intact(&self) -> bool {
        self.check == !self.value
    }
}

static DROP_COUNTER: std::sync::Mutex<Option<shmidl::ShmRef<std::sync::atomic::AtomicU64>>> =
    std::sync::Mutex::new(None);

/// Uninstalls the drop counter when dropped, so the process detaches from
/// the segment (a handle in a static would keep it attached forever).
#[must_use = "the counter is uninstalled when the guard is dropped"]
pub struct DropCounterGuard(());

impl Drop for DropCounterGuard {
    fn drop(&mut self) {
        *DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Makes `Counted`'s destructor count into the object `drops` of `segment`
/// (created if missing) until the guard is dropped.
pub fn install_drop_counter(segment: &shmidl::Segment) -> DropCounterGuard {
    let counter = segment
        .find_or_create("drops", || std::sync::atomic::AtomicU64::new(0))
        .expect("drop counter");
    *DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) = Some(counter);
    DropCounterGuard(())
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(c) = &*DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A router test message: who sent it, its sequence number, and a checksum
/// over both and a payload, to catch torn or misrouted samples.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, shmidl::ShmMessage)]
#[shm(name = "shmidl_tests.Msg")]
pub struct Msg {
    /// Sending publisher's number.
    pub publisher: u64,
    /// Sequence number within that publisher.
    pub seq: u64,
    /// Filler derived from the sequence number.
    pub payload: [u64; 4],
    /// Checksum of the fields above.
    pub checksum: u64,
}

impl Msg {
    /// A message with a valid checksum.
    pub fn new(publisher: u64, seq: u64) -> Self {
        let payload = [
            seq ^ 0x5555,
            seq.rotate_left(7),
            !seq,
            publisher.wrapping_mul(31),
        ];
        let mut m = Self {
            publisher,
            seq,
            payload,
            checksum: 0,
        };
        m.checksum = m.compute();
        m
    }

    fn compute(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for w in [self.publisher, self.seq].iter().chain(&self.payload) {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Whether the checksum matches.
    pub fn intact(&self) -> bool {
        self.checksum == self.compute()
    }
}

/// The topic of the crash tests, and its settings (shared by the tests and
/// the child binary).
pub const CRASH_TOPIC: &str = "crash/topic";

/// Settings of [`CRASH_TOPIC`].
pub fn crash_config() -> shmidl::TopicConfig {
    shmidl::TopicConfig {
        pool: 16,
        pool_chunks: 1,
        depth: 4,
        overflow: shmidl::SendMode::SoftFailIfFull,
        max_publishers: 4,
        max_subscribers: 4,
        elements: 0,
    }
}

/// Settings of [`CRASH_TOPIC`] with a pool of 2-slot chunks that may grow
/// to 8 chunks (the crash tests of growable pools).
pub fn crash_grow_config() -> shmidl::TopicConfig {
    shmidl::TopicConfig {
        pool: 2,
        pool_chunks: 8,
        ..crash_config()
    }
}

/// The soak test's topic.
pub const SOAK_TOPIC: &str = "soak/topic";

/// Settings of [`SOAK_TOPIC`].
pub fn soak_config() -> shmidl::TopicConfig {
    shmidl::TopicConfig {
        pool: 64,
        pool_chunks: 1,
        depth: 8,
        overflow: shmidl::SendMode::WaitIfFull(Duration::from_millis(200)),
        max_publishers: 4,
        max_subscribers: 4,
        elements: 0,
    }
}

/// What [`run_churn`] found once every child was done.
#[derive(Debug)]
pub struct ChurnOutcome {
    /// Objects the children made.
    pub makes: u64,
    /// Destructor runs counted.
    pub drops: u64,
    /// Free slots at the end.
    pub free: u32,
    /// The pool's capacity at the end (all live chunks).
    pub capacity: u32,
    /// Chunks the pool ever had at once, as far as the parent saw (1 for a
    /// fixed pool).
    pub chunks_seen: u32,
}

/// Runs `children` processes of random make/clone/drop/hand-over (`ops`
/// each, the child's `churn` scenario) on a pool of `Counted` with
/// `capacity` slots per chunk and up to `max_chunks` chunks; then takes the
/// handles left in the mailbox and reports what it finds. The caller must
/// be a test binary of its own (it installs the drop counter).
pub fn run_churn(
    child: &str,
    capacity: u32,
    max_chunks: u32,
    children: u64,
    ops: u64,
) -> ChurnOutcome {
    use shmidl::{Pool, RawSample, Segment};
    use std::sync::atomic::AtomicU64;

    let name = unique_name("churn");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .expect("segment");
    let guard = install_drop_counter(&seg);
    let drops = seg.find::<AtomicU64>("drops").expect("drops");
    let makes = seg
        .find_or_create("makes", || AtomicU64::new(0))
        .expect("makes");
    let mailbox = seg
        .find_or_create("mailbox", <[AtomicU64; 16]>::default)
        .expect("mailbox");
    let pool = Pool::<Counted>::builder(&seg, "pool")
        .capacity(capacity)
        .growable(max_chunks)
        .open_or_create()
        .expect("pool");

    let deadline = Instant::now() + Duration::from_secs(120);
    let ops = ops.to_string();
    let mut running: Vec<_> = (1..=children)
        .map(|i| {
            let seed = (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i)).to_string();
            spawn_child(child, &["churn", &name, &seed, &ops])
        })
        .collect();
    let mut chunks_seen = pool.chunks();
    while Instant::now() < deadline
        && running
            .iter_mut()
            .any(|c| c.try_wait().ok().flatten().is_none())
    {
        chunks_seen = chunks_seen.max(pool.chunks());
        thread::sleep(Duration::from_millis(5));
    }
    for c in running {
        let out = wait_with_deadline(c, deadline);
        assert!(out.status.success(), "churn child failed: {out:?}");
    }
    // Handles still parked in the mailbox own a reference each.
    for slot in mailbox.iter() {
        let raw = slot.swap(0, Ordering::SeqCst);
        if raw != 0 {
            // SAFETY: a parked handle owns one reference and nobody else
            // can take it any more.
            let s = unsafe { pool.from_raw(RawSample::from_u64(raw)) }.expect("parked handle");
            assert!(s.intact());
        }
    }
    let outcome = ChurnOutcome {
        makes: makes.load(Ordering::SeqCst),
        drops: drops.load(Ordering::SeqCst),
        free: pool.free_count(),
        capacity: pool.capacity(),
        chunks_seen,
    };
    drop((pool, makes, drops, mailbox, guard));
    outcome
}

/// The chunk segments of `segment`'s growable pools present in `/dev/shm`
/// now (file names, sorted).
pub fn chunk_files(segment: &str) -> Vec<String> {
    // A domain's topic segments are `<domain>.t…`, their chunks
    // `<topic segment>.chunk-…`: every chunk under the name counts.
    let prefix = format!("shmidl.{segment}.");
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("reading /dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && n.contains(".chunk-"))
        .collect();
    v.sort();
    v
}

/// The types of `tests/schema/agreement.shmidl`, declared by hand with
/// `#[derive(ShmMessage)]` (explicit padding where the schema compiler puts
/// it): they must agree with the schema, and with the code generated from
/// it, on fingerprints, sizes and offsets.
pub mod derived {
    use shmidl::{Bool, Enum, FixedSizeBytes, FixedSizeString, FixedSizeVec, ShmMessage};

    /// `enum Mode: u8`.
    #[derive(ShmMessage, Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(u8)]
    #[shm(name = "agree.v1.Mode")]
    pub enum Mode {
        /// 0
        #[default]
        Idle = 0,
        /// 1
        Run = 1,
        /// 2
        Fault = 2,
    }

    /// `enum Dir: i16` with a negative value.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(i16)]
    #[shm(name = "agree.v1.Dir")]
    pub enum Dir {
        /// -1
        Back = -1,
        /// 0
        Stop = 0,
        /// 1
        Ahead = 1,
    }

    /// `struct Vec3`.
    #[derive(ShmMessage, Clone, Copy, Debug, Default, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.Vec3")]
    pub struct Vec3 {
        /// x
        pub x: f64,
        /// y
        pub y: f64,
        /// z
        pub z: f64,
    }

    /// `message JointState`.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.JointState", default)]
    pub struct JointState {
        /// stamp
        pub stamp_ns: u64,
        /// mode
        pub mode: Enum<Mode>,
        /// names
        pub names: [FixedSizeString<32>; 16],
        /// padding
        #[shm(padding)]
        pub __pad0: [u8; 7],
        /// position
        pub position: FixedSizeVec<f64, 16>,
        /// pose
        pub pose: Vec3,
    }

    /// `message Text`.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.Text", default)]
    pub struct Text {
        /// flag
        pub flag: Bool,
        /// name
        pub name: FixedSizeString<5>,
        /// blob
        pub blob: FixedSizeBytes<3>,
        /// padding
        #[shm(padding)]
        pub __pad0: [u8; 1],
        /// count
        pub count: u16,
    }

    /// `message Steps`.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.Steps")]
    pub struct Steps {
        /// dirs
        pub dirs: FixedSizeVec<Enum<Dir>, 4>,
        /// last
        pub last: Enum<Dir>,
    }

    /// `message Grid`.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.Grid")]
    pub struct Grid {
        /// cells
        pub cells: [[u8; 3]; 2],
        /// padding
        #[shm(padding)]
        pub __pad0: [u8; 2],
        /// points
        pub points: FixedSizeVec<Vec3, 4>,
    }

    /// `message Keywords`: `type` and `self` as Rust fields.
    #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    #[shm(name = "agree.v1.Keywords")]
    pub struct Keywords {
        /// type
        pub r#type: u8,
        /// padding
        #[shm(padding)]
        pub __pad0: [u8; 3],
        /// self
        #[shm(name = "self")]
        pub self_: u32,
    }

    /// Like `JointState` but with a field renamed: another fingerprint.
    #[derive(ShmMessage, Clone, Copy, Debug)]
    #[repr(C)]
    #[shm(name = "agree.v1.JointState", default)]
    pub struct WrongJointState {
        /// stamp, under another name
        pub stamp: u64,
        /// mode
        pub mode: Enum<Mode>,
        /// names
        pub names: [FixedSizeString<32>; 16],
        /// padding
        #[shm(padding)]
        pub __pad0: [u8; 7],
        /// position
        pub position: FixedSizeVec<f64, 16>,
        /// pose
        pub pose: Vec3,
    }

    /// The topic both sides use.
    pub const TOPIC: &str = "agree/joints";

    /// The schema's options of `agree/joints`.
    pub fn config() -> shmidl::TopicConfig {
        shmidl::TopicConfig {
            pool: 16,
            depth: 8,
            ..shmidl::TopicConfig::default()
        }
    }
}

/// The length of sample `seq` of the runtime-sized topic tests, for slots
/// of `max` bytes: every third sample fills its slot, the others vary
/// (an empty one among them).
pub fn slice_len(seq: u64, max: usize) -> usize {
    match seq % 3 {
        0 => max,
        1 => (seq as usize).wrapping_mul(7919) % max,
        _ => (seq as usize * 104_729 + 1) % (max + 1),
    }
}

/// Fills sample `seq` with its pattern: the little-endian `seq` in the
/// first bytes, then `seq + i` (mod 251) at byte `i`.
pub fn slice_fill(seq: u64, bytes: &mut [u8]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = ((seq as usize + i) % 251) as u8;
    }
    let head = seq.to_le_bytes();
    let n = head.len().min(bytes.len());
    bytes[..n].copy_from_slice(&head[..n]);
}

/// The first byte of `bytes` that differs from sample `seq`'s pattern.
pub fn slice_mismatch(seq: u64, bytes: &[u8]) -> Option<usize> {
    let head = seq.to_le_bytes();
    let n = head.len().min(bytes.len());
    if bytes[..n] != head[..n] {
        return Some(0);
    }
    (n..bytes.len()).find(|&i| bytes[i] != ((seq as usize + i) % 251) as u8)
}

/// A child process whose stdout is read line by line as it runs, and whose
/// stdin stays open (closing it, or writing `stop`, ends the discovery
/// children). Killed when dropped, so a failing test leaves no process.
pub struct LineChild {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Lines read but not yet matched.
    pending: std::collections::VecDeque<String>,
}

impl LineChild {
    /// Starts `command` with stdin and stdout piped.
    pub fn spawn(mut command: Command) -> LineChild {
        use std::io::{BufRead, BufReader};
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild {
            child,
            lines,
            pending: std::collections::VecDeque::new(),
        }
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The value of the first unmatched line `key=value`, waiting up to
    /// `timeout`; lines before it with other keys stay for later calls.
    pub fn next_value(&mut self, key: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let prefix = format!("{key}=");
        if let Some(i) = self.pending.iter().position(|l| l.starts_with(&prefix)) {
            let line = self.pending.remove(i)?;
            return Some(line[prefix.len()..].to_owned());
        }
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(v) = line.strip_prefix(&prefix) {
                return Some(v.to_owned());
            }
            self.pending.push_back(line);
        }
    }

    /// Every line received so far that no call matched (for messages).
    pub fn unmatched(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.pending.push_back(l);
        }
        self.pending.iter().cloned().collect()
    }

    /// Writes `stop` to the child's stdin.
    pub fn stop(&mut self) {
        use std::io::Write;
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "stop");
            let _ = stdin.flush();
        }
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for the child to exit before `timeout`
    /// (killing it if it does not); whether it exited successfully.
    pub fn finish(&mut self, timeout: Duration) -> bool {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => {
                    self.kill();
                    return false;
                }
            }
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A UDP port that was free a moment ago (the kernel's pick), for a test's
/// own discovery traffic.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral UDP port")
}

/// Two network namespaces and the veth pair between them (the tests' own
/// hosts: addresses 10.77.0.1/24 and 10.77.0.2/24, IPv6 link-local);
/// deleted on drop. Needs root and `ip` (iproute2).
pub struct Namespaces {
    /// The first namespace (10.77.0.1/24 on `veth_a`).
    pub a: String,
    /// The second namespace (10.77.0.2/24 on `veth_b`).
    pub b: String,
    /// The veth end in `a`.
    pub veth_a: String,
    /// The veth end in `b`.
    pub veth_b: String,
}

/// Runs `ip` with `args`; `Err` with its message if it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// Creates `shmidl-<pid>-<n>-a`/`-b` joined by `shv<pid>x<n>a`/`…b`,
    /// both ends up with their address; `Err` says why not.
    pub fn create() -> Result<Namespaces, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if !rustix::process::geteuid().is_root() {
            return Err("not root".into());
        }
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sut = Namespaces {
            a: format!("shmidl-{pid}-{n}-a"),
            b: format!("shmidl-{pid}-{n}-b"),
            // At most 15 bytes: "shv" + up to 7 digits + "x" + n + "a".
            veth_a: format!("shv{}x{n}a", pid % 10_000_000),
            veth_b: format!("shv{}x{n}b", pid % 10_000_000),
        };
        // From here on, drop cleans up whatever was made.
        ip(&["netns", "add", &sut.a])?;
        ip(&["netns", "add", &sut.b])?;
        ip(&[
            "link",
            "add",
            &sut.veth_a,
            "type",
            "veth",
            "peer",
            "name",
            &sut.veth_b,
        ])?;
        ip(&["link", "set", &sut.veth_a, "netns", &sut.a])?;
        ip(&["link", "set", &sut.veth_b, "netns", &sut.b])?;
        for (ns, dev, addr) in [
            (&sut.a, &sut.veth_a, "10.77.0.1/24"),
            (&sut.b, &sut.veth_b, "10.77.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            // No duplicate address detection: the link-local IPv6 address
            // is usable at once (else ~1 s later; the test would only wait).
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw"])
                .arg(format!("net.ipv6.conf.{dev}.accept_dad=0"))
                .status();
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(sut)
    }

    /// Runs `exe` with `args` in namespace `ns`.
    pub fn child(&self, exe: &str, ns: &str, args: &[&str]) -> LineChild {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, exe]).args(args);
        LineChild::spawn(c)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
        let _ = ip(&["link", "del", &self.veth_a]);
    }
}
