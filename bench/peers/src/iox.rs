//! iceoryx2 publish-subscribe ping-pong between two processes.
//!
//! Two publish-subscribe services, `<run>/ping` (leader publishes, follower subscribes) and
//! `<run>/pong` (the reverse), carry a fixed-size [`Msg`]. Each message is sent with
//! `loan_uninit` → write the sequence number in place → `send`, and received with
//! `subscriber.receive()`; the receiver checks the sequence number. The body bytes are never
//! touched: this is the zero-copy path, whose cost must not depend on the payload size.
//!
//! Both services use the settings of iceoryx2's own `benchmarks/publish-subscribe`: one
//! publisher, one subscriber, no history, a subscriber buffer of one sample, safe overflow.
//!
//! Waiting for a message:
//! - `busy-poll`: `receive()` in a loop.
//! - `blocking`: the sender also calls `notify()` on an event service (`<run>/ping-wake`,
//!   `<run>/pong-wake`, iceoryx2's event-based pattern); the receiver tries `receive()` and,
//!   while nothing is there, sleeps in `Listener::timed_wait`.
//! - `blocking-waitset`: the same, but sleeping in a `WaitSet` with the listener attached
//!   (iceoryx2's recommended event loop; the listener is drained in the callback).

use std::{
    fmt,
    mem::MaybeUninit,
    time::{Duration, Instant},
};

use iceoryx2::{
    port::{
        listener::{Listener, ListenerWaitError},
        notifier::Notifier,
        publisher::Publisher,
        subscriber::Subscriber,
    },
    prelude::*,
    service::port_factory::{event, publish_subscribe},
    waitset::WaitSetRunResult,
};

use crate::{
    peer::{
        block_until, check_signals, spin_until, unique_name, Context, Follower, Other, Result,
        Slept, Watch, ITERATIONS_PER_SIGNAL_CHECK,
    },
    Plan, Wait,
};

/// Payload sizes this binary is built for (`Msg` is fixed-size, so each is its own type).
pub const PAYLOADS: &[usize] = &[64, 4096, 65536, 1 << 20, 4 << 20];

/// A fixed-size message of `8 + BODY` bytes: a sequence number and an opaque body.
///
/// The body is `MaybeUninit<u8>` so that writing only `seq` fully initialises a `Msg` in the
/// Rust sense, and no byte of the body has to be written or read to send a message.
#[derive(ZeroCopySend)]
#[repr(C)]
pub struct Msg<const BODY: usize> {
    seq: u64,
    body: [MaybeUninit<u8>; BODY],
}

impl<const BODY: usize> fmt::Debug for Msg<BODY> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msg")
            .field("seq", &self.seq)
            .field("body_len", &BODY)
            .finish()
    }
}

type Ipc = ipc::Service;
type PubSub<const B: usize> = publish_subscribe::PortFactory<Ipc, Msg<B>, ()>;

/// Leader side: creates the services, spawns the follower, runs the ping-pong and returns the
/// measured round trips in nanoseconds.
pub fn lead(plan: &Plan, payload: usize, wait: Wait) -> Result<Vec<u64>> {
    match payload {
        64 => lead_sized::<{ 64 - 8 }>(plan, wait),
        4096 => lead_sized::<{ 4096 - 8 }>(plan, wait),
        65536 => lead_sized::<{ 65536 - 8 }>(plan, wait),
        1048576 => lead_sized::<{ (1 << 20) - 8 }>(plan, wait),
        4194304 => lead_sized::<{ (4 << 20) - 8 }>(plan, wait),
        other => Err(unsupported(other)),
    }
}

/// Follower side: opens the services the leader created and answers every ping.
pub fn follow(name: &str, total: u64, payload: usize, wait: Wait, mut watch: Watch) -> Result<()> {
    let w = &mut watch;
    let result = match payload {
        64 => follow_sized::<{ 64 - 8 }>(name, total, wait, w),
        4096 => follow_sized::<{ 4096 - 8 }>(name, total, wait, w),
        65536 => follow_sized::<{ 65536 - 8 }>(name, total, wait, w),
        1048576 => follow_sized::<{ (1 << 20) - 8 }>(name, total, wait, w),
        4194304 => follow_sized::<{ (4 << 20) - 8 }>(name, total, wait, w),
        other => Err(unsupported(other)),
    };
    if result.is_err() && watch.leader_is_gone() {
        // The leader died and cannot sweep its domain; no one else uses it.
        let _ = sweep_domain(name);
    }
    result
}

fn unsupported(payload: usize) -> crate::peer::Error {
    format!("payload {payload} B is not built in; supported: {PAYLOADS:?}").into()
}

/// The four services of one run.
struct Services<const B: usize> {
    ping: PubSub<B>,
    pong: PubSub<B>,
    /// `(ping-wake, pong-wake)` in the blocking modes.
    wake: Option<(event::PortFactory<Ipc>, event::PortFactory<Ipc>)>,
}

impl<const B: usize> Services<B> {
    fn new(node: &Node<Ipc>, run: &str, blocking: bool, create: bool) -> Result<Self> {
        let pubsub = |topic: &str| -> Result<PubSub<B>> {
            let name = service_name(run, topic)?;
            let builder = node
                .service_builder(&name)
                .publish_subscribe::<Msg<B>>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(1)
                .subscriber_max_borrowed_samples(1)
                .enable_safe_overflow(true);
            if create {
                builder.create().context(format!("creating service {name}"))
            } else {
                builder.open().context(format!("opening service {name}"))
            }
        };
        let events = |topic: &str| -> Result<event::PortFactory<Ipc>> {
            let name = service_name(run, topic)?;
            let builder = node
                .service_builder(&name)
                .event()
                .max_notifiers(1)
                .max_listeners(1)
                .disable_notifier_created_event()
                .disable_notifier_dropped_event()
                .disable_notifier_dead_event();
            if create {
                builder.create().context(format!("creating service {name}"))
            } else {
                builder.open().context(format!("opening service {name}"))
            }
        };
        Ok(Self {
            ping: pubsub("ping")?,
            pong: pubsub("pong")?,
            wake: if blocking {
                Some((events("ping-wake")?, events("pong-wake")?))
            } else {
                None
            },
        })
    }
}

fn service_name(run: &str, topic: &str) -> Result<ServiceName> {
    let name = format!("{run}/{topic}");
    ServiceName::new(&name).context(format!("service name {name}"))
}

/// One process's ports: it publishes on one service and subscribes to the other.
struct Ends<const B: usize> {
    publisher: Publisher<Ipc, Msg<B>, ()>,
    subscriber: Subscriber<Ipc, Msg<B>, ()>,
    /// Notifier on the service we publish to, listener on the one we subscribe to.
    wake: Option<(Notifier<Ipc>, Listener<Ipc>)>,
}

impl<const B: usize> Ends<B> {
    fn new(
        out: &PubSub<B>,
        inp: &PubSub<B>,
        wake: Option<(&event::PortFactory<Ipc>, &event::PortFactory<Ipc>)>,
    ) -> Result<Self> {
        Ok(Self {
            publisher: out
                .publisher_builder()
                .max_loaned_samples(1)
                .create()
                .context("creating publisher")?,
            subscriber: inp
                .subscriber_builder()
                .create()
                .context("creating subscriber")?,
            wake: match wake {
                None => None,
                Some((out_ev, in_ev)) => Some((
                    out_ev
                        .notifier_builder()
                        .create()
                        .context("creating notifier")?,
                    in_ev
                        .listener_builder()
                        .create()
                        .context("creating listener")?,
                )),
            },
        })
    }

    /// Sends message `seq`: loan, write the sequence number in place, send, and notify in the
    /// blocking modes.
    #[inline]
    fn send(&self, seq: u64) -> Result<()> {
        let mut sample = self.publisher.loan_uninit().context("loan_uninit")?;
        let msg = sample.payload_mut().as_mut_ptr();
        // SAFETY: `msg` comes from `&mut MaybeUninit<Msg<B>>`, so it is valid for writes and
        // aligned for `Msg<B>`, whose alignment (8, from `seq: u64`) is that of `u64`. The
        // Reference ("Type layout", `repr(C)` structs) places the first field at offset 0
        // ("start with a current offset of 0 bytes ... the offset of the field is the current
        // offset"), so `msg.cast::<u64>()` is exactly `&mut (*msg).seq`. `write` does not read
        // or drop the old, uninitialised value.
        unsafe { msg.cast::<u64>().write(seq) };
        // SAFETY: `seq` was just initialised; `body` is `[MaybeUninit<u8>; B]`, for which the
        // std docs say uninitialised memory is valid ("MaybeUninit<T> ... the compiler knows
        // the data inside may not be initialized"), so the whole `Msg<B>` is initialised, as
        // `assume_init` requires.
        let sample = unsafe { sample.assume_init() };
        sample.send().context("send")?;
        if let Some((notifier, _)) = &self.wake {
            notifier.notify().context("notify")?;
        }
        Ok(())
    }

    /// Takes message `seq` if it is there; any other sequence number is an error.
    #[inline]
    fn try_receive(&self, seq: u64) -> Result<Option<()>> {
        match self.subscriber.receive().context("receive")? {
            None => Ok(None),
            Some(sample) if sample.seq == seq => Ok(Some(())),
            Some(sample) => Err(format!("expected message {seq}, got {}", sample.seq).into()),
        }
    }
}

/// A way to wait for the next message, built once per run.
enum Waiter<'a> {
    BusyPoll,
    Listener,
    WaitSet {
        waitset: &'a WaitSet<Ipc>,
        guard: WaitSetGuard<'a, 'a, Ipc>,
    },
}

impl Waiter<'_> {
    /// Waits for message `seq` and takes it.
    #[inline]
    fn receive<const B: usize>(&self, ends: &Ends<B>, watch: &mut Watch, seq: u64) -> Result<()> {
        let poll = || ends.try_receive(seq);
        match self {
            Waiter::BusyPoll => spin_until(watch, "polling for a sample", poll),
            Waiter::Listener => {
                let (_, listener) = ends.wake.as_ref().ok_or("blocking without listener")?;
                block_until(
                    watch,
                    "waiting on the listener",
                    poll,
                    |slice| match listener.timed_wait(|_| {}, slice) {
                        Ok(0) => Ok(Slept::SliceElapsed),
                        Ok(_) | Err(ListenerWaitError::InterruptSignal) => Ok(Slept::Woken),
                        Err(e) => Err(format!("Listener::timed_wait: {e:?}").into()),
                    },
                )
            }
            Waiter::WaitSet { waitset, guard } => {
                let (_, listener) = ends.wake.as_ref().ok_or("blocking without listener")?;
                block_until(watch, "waiting on the waitset", poll, |slice| {
                    wait_in_waitset(waitset, guard, listener, slice)
                })
            }
        }
    }
}

fn wait_in_waitset(
    waitset: &WaitSet<Ipc>,
    guard: &WaitSetGuard<'_, '_, Ipc>,
    listener: &Listener<Ipc>,
    slice: Duration,
) -> Result<Slept> {
    let mut woken = false;
    let mut drained = Ok(0);
    let result = waitset
        .wait_and_process_once_with_timeout(
            |id| {
                if id.has_event_from(guard) {
                    woken = true;
                    drained = listener.try_wait(|_| {});
                }
                CallbackProgression::Continue
            },
            slice,
        )
        .context("WaitSet::wait_and_process_once_with_timeout")?;
    drained.context("Listener::try_wait")?;
    match result {
        WaitSetRunResult::TerminationRequest => Err("termination requested".into()),
        WaitSetRunResult::Interrupt => Ok(Slept::Woken),
        _ if woken => Ok(Slept::Woken),
        _ => Ok(Slept::SliceElapsed),
    }
}

/// Builds the waiter for `wait` and runs `body` with it (the `WaitSet` borrows the listener,
/// so it lives on this stack frame).
fn with_waiter<const B: usize, T>(
    ends: &Ends<B>,
    wait: Wait,
    body: impl FnOnce(&Waiter<'_>) -> Result<T>,
) -> Result<T> {
    match wait {
        Wait::BusyPoll => body(&Waiter::BusyPoll),
        Wait::Blocking => body(&Waiter::Listener),
        Wait::Waitset => {
            let (_, listener) = ends.wake.as_ref().ok_or("blocking without listener")?;
            let waitset = WaitSetBuilder::new()
                .create::<Ipc>()
                .context("creating WaitSet")?;
            let guard = waitset
                .attach_notification(listener)
                .context("attaching the listener to the WaitSet")?;
            let waiter = Waiter::WaitSet {
                waitset: &waitset,
                guard,
            };
            let out = body(&waiter);
            drop(waiter);
            out
        }
    }
}

/// The iceoryx2 configuration of one run: the defaults (no config file is read, so results
/// do not depend on this machine's iceoryx2 setup) with a file prefix of its own.
///
/// The prefix makes each run its own iceoryx2 domain: its files cannot meet another
/// program's, and everything it leaves in `/dev/shm` can be found by name afterwards. That is
/// needed because iceoryx2 0.10 keeps a persistent per-domain "global management segment"
/// (`<prefix>…_node.<version>.global_mgmt`, a node counter) that no node removes on drop.
fn domain_config(run: &str) -> Result<Config> {
    let mut config = Config::default();
    config.global.prefix =
        FileName::new(domain_prefix(run).as_bytes()).context("iceoryx2 domain prefix")?;
    Ok(config)
}

fn domain_prefix(run: &str) -> String {
    format!("{run}_")
}

/// Removes what the finished run's domain left in `/dev/shm` (both processes are gone, so
/// nothing uses it). Returns the names removed other than the expected global management
/// segment.
fn sweep_domain(run: &str) -> Result<Vec<String>> {
    let prefix = domain_prefix(run);
    let mut unexpected = Vec::new();
    for entry in std::fs::read_dir("/dev/shm").context("listing /dev/shm")? {
        let entry = entry.context("listing /dev/shm")?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            std::fs::remove_file(entry.path()).context(format!("removing /dev/shm/{name}"))?;
            if !name.ends_with(".global_mgmt") {
                unexpected.push(name);
            }
        }
    }
    Ok(unexpected)
}

fn node(config: &Config) -> Result<Node<Ipc>> {
    NodeBuilder::new()
        .config(config)
        .create::<Ipc>()
        .context("creating iceoryx2 node")
}

fn lead_sized<const B: usize>(plan: &Plan, wait: Wait) -> Result<Vec<u64>> {
    let run = unique_name();
    let config = domain_config(&run)?;
    let result = lead_in_domain::<B>(plan, wait, &run, &config);
    // Every iceoryx2 object of this run is dropped and the follower has exited (or was
    // killed): the domain is ours alone.
    match sweep_domain(&run) {
        Ok(unexpected) if unexpected.is_empty() => {}
        Ok(unexpected) => eprintln!(
            "shmidl-peers: iceoryx2 left {} file(s) in /dev/shm, removed: {unexpected:?}",
            unexpected.len()
        ),
        Err(e) => eprintln!("shmidl-peers: cleaning /dev/shm: {e}"),
    }
    result
}

fn lead_in_domain<const B: usize>(
    plan: &Plan,
    wait: Wait,
    run: &str,
    config: &Config,
) -> Result<Vec<u64>> {
    let node = node(config)?;
    let services = Services::<B>::new(&node, run, wait != Wait::BusyPoll, true)?;
    let ends = Ends::new(
        &services.ping,
        &services.pong,
        services.wake.as_ref().map(|(p, q)| (p, q)),
    )?;
    let follower = Follower::spawn(&plan.follower_args(
        crate::Bench::Iceoryx2,
        run,
        size_of::<Msg<B>>(),
        wait,
    ))?;
    let mut watch = Watch::new(plan.timeout, Other::Follower(follower));
    let result = (|| {
        wait_for_follower(&services, &mut watch)?;
        with_waiter(&ends, wait, |waiter| {
            let mut samples = Vec::with_capacity(plan.iterations as usize);
            for seq in 1..=plan.total() {
                let t0 = Instant::now();
                ends.send(seq)?;
                waiter.receive(&ends, &mut watch, seq)?;
                let rtt = t0.elapsed();
                if seq > plan.warmup {
                    samples.push(rtt.as_nanos() as u64);
                }
                if seq.is_multiple_of(ITERATIONS_PER_SIGNAL_CHECK) {
                    check_signals()?;
                }
            }
            Ok(samples)
        })
    })();
    match result {
        Ok(samples) => {
            let follower = watch.into_follower().ok_or("leader without follower")?;
            follower.finish(plan.timeout)?;
            Ok(samples)
        }
        Err(e) => {
            // Kill and reap the follower first, then remove what its node left behind.
            drop(watch);
            let _ = node.try_cleanup_dead_nodes();
            Err(e)
        }
    }
}

/// Waits until the follower's ports are registered in the services.
fn wait_for_follower<const B: usize>(services: &Services<B>, watch: &mut Watch) -> Result<()> {
    let ready = || {
        let ping = services.ping.dynamic_config().number_of_subscribers() >= 1;
        let pong = services.pong.dynamic_config().number_of_publishers() >= 1;
        let wake = services.wake.as_ref().is_none_or(|(ping_ev, pong_ev)| {
            ping_ev.dynamic_config().number_of_listeners() >= 1
                && pong_ev.dynamic_config().number_of_notifiers() >= 1
        });
        Ok((ping && pong && wake).then_some(()))
    };
    block_until(watch, "waiting for the follower's ports", ready, |_| {
        std::thread::sleep(Duration::from_millis(1));
        Ok(Slept::SliceElapsed)
    })
}

fn follow_sized<const B: usize>(
    run: &str,
    total: u64,
    wait: Wait,
    watch: &mut Watch,
) -> Result<()> {
    let node = node(&domain_config(run)?)?;
    let services = Services::<B>::new(&node, run, wait != Wait::BusyPoll, false)?;
    let ends = Ends::new(
        &services.pong,
        &services.ping,
        services.wake.as_ref().map(|(p, q)| (q, p)),
    )?;
    let result = with_waiter(&ends, wait, |waiter| {
        for seq in 1..=total {
            waiter.receive(&ends, watch, seq)?;
            ends.send(seq)?;
            if seq.is_multiple_of(ITERATIONS_PER_SIGNAL_CHECK) {
                check_signals()?;
            }
        }
        Ok(())
    });
    if result.is_err() {
        // If the leader died, remove what its node left behind.
        let _ = node.try_cleanup_dead_nodes();
    }
    result
}
