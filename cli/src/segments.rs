//! `shmidl ls` and `shmidl clean`: the segments in `/dev/shm`.

#![allow(clippy::print_stdout)]

use std::{collections::HashMap, process::ExitCode, time::Duration};

use shmidl::{
    CleanOutcome, Node, ObjectKind, PortStats, Segment, SegmentOpenError, SegmentReport, TopicInfo,
};

/// Messages per second of each router port seen in two inspections:
/// (segment, router object, "publisher"/"subscriber", port index, pid).
type Rates = HashMap<(String, String, &'static str, u32, u32), f64>;

/// Every attached port of every router of `r`, with its role.
fn ports(r: &SegmentReport) -> impl Iterator<Item = (&str, &'static str, &PortStats)> {
    r.objects
        .iter()
        .filter_map(|o| o.router.as_ref().map(|x| (o, x)))
        .flat_map(|(o, x)| {
            let name = o.name.as_str();
            x.publishers
                .iter()
                .map(move |p| (name, "publisher", p))
                .chain(x.subscribers.iter().map(move |p| (name, "subscriber", p)))
        })
}

/// Inspects every segment with attached router ports again after
/// `interval` and returns each port's message rate over it.
fn rates(
    reports: &[(String, Result<SegmentReport, SegmentOpenError>)],
    interval: Duration,
) -> Rates {
    let mut out = Rates::new();
    let busy: Vec<&SegmentReport> = reports
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .filter(|r| ports(r).next().is_some())
        .collect();
    if interval.is_zero() || busy.is_empty() {
        return out;
    }
    std::thread::sleep(interval);
    for before in busy {
        let Ok(after) = Segment::inspect(&before.name) else {
            continue;
        };
        for (object, role, p) in ports(&after) {
            let earlier = ports(before).find(|&(o, r, q)| {
                o == object && r == role && q.index == p.index && q.pid == p.pid
            });
            if let Some((_, _, q)) = earlier {
                let rate = p.messages.wrapping_sub(q.messages) as f64 / interval.as_secs_f64();
                out.insert(
                    (before.name.clone(), object.to_owned(), role, p.index, p.pid),
                    rate,
                );
            }
        }
    }
    out
}

/// The ports of segment `r` as text lines, with their rates.
fn print_ports(r: &SegmentReport, rates: &Rates, indent: &str) {
    for (object, role, p) in ports(r) {
        let rate = rates
            .get(&(r.name.clone(), object.to_owned(), role, p.index, p.pid))
            .map_or(String::new(), |x| format!(", {} msg/s", human(*x)));
        println!(
            "{indent}{role} {} (pid {}): {} messages{rate}, {} queued",
            p.index, p.pid, p.messages, p.queued
        );
    }
}

fn ports_json(r: &SegmentReport, rates: &Rates) -> Vec<serde_json::Value> {
    ports(r)
        .map(|(object, role, p)| {
            serde_json::json!({
                "router": object, "role": role, "index": p.index, "pid": p.pid,
                "messages": p.messages, "queued": p.queued,
                "messages_per_s": rates.get(&(r.name.clone(), object.to_owned(), role, p.index, p.pid)),
            })
        })
        .collect()
}

/// `12345.6` → `12.3 k`.
fn human(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// `shmidl ls`: every shmidl segment with its size, objects, pools and
/// participants (alive or dead), read without joining it. A domain lists
/// its topics (type, fingerprint, configuration) with their segments under
/// it: slot use and live ports, with each port's message rate over
/// `interval` (none if zero).
pub fn ls(json: bool, interval: Duration) -> ExitCode {
    let names = match Segment::list() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("shmidl ls: reading /dev/shm: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reports: Vec<_> = names
        .into_iter()
        .map(|name| {
            let r = Segment::inspect(&name);
            (name, r)
        })
        .collect();
    if reports.is_empty() && !json {
        println!("no shmidl segments in /dev/shm");
        return ExitCode::SUCCESS;
    }
    let rates = rates(&reports, interval);
    // Domains and their topics; topic segments are shown under them.
    let topics: Vec<(String, Vec<TopicInfo>)> = reports
        .iter()
        .filter(|(_, r)| {
            r.as_ref().is_ok_and(|r| {
                r.objects
                    .iter()
                    .any(|o| o.ty.kind == ObjectKind::TOPIC_REGISTRY)
            })
        })
        .map(|(name, _)| (name.clone(), Node::inspect_topics(name).unwrap_or_default()))
        .collect();
    let topic_segment = |name: &str| {
        topics
            .iter()
            .any(|(_, ts)| ts.iter().any(|t| t.segment == name))
    };
    let report_of = |name: &str| {
        reports
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    // A pool chunk names its owner by id: find the owner's name.
    let owner_of = |id: u64| {
        reports
            .iter()
            .find_map(|(n, r)| r.as_ref().ok().filter(|r| r.id == id).map(|_| n.clone()))
    };
    // A topic's pool chunks are counted with the topic, not listed apart.
    let chunk_of_topic = |r: &SegmentReport| {
        r.owner_id
            .and_then(owner_of)
            .is_some_and(|owner| topic_segment(&owner))
    };
    let pool_of = |r: &SegmentReport| topic_pool(r, &reports);
    let mut rows = Vec::new();
    for (name, report) in &reports {
        if topic_segment(name) || report.as_ref().is_ok_and(chunk_of_topic) {
            continue;
        }
        let domain_topics = topics
            .iter()
            .find(|(d, _)| d == name)
            .map(|(_, ts)| ts.as_slice())
            .unwrap_or_default();
        match report {
            Ok(r) => {
                let owner = r.owner_id.map(|id| owner_of(id).ok_or(id));
                if json {
                    rows.push(serde_json::json!({
                        "name": r.name,
                        "size": r.size,
                        "id": format!("{:#018x}", r.id),
                        "creator_pid": r.creator_pid,
                        "closing": r.closing,
                        "chunk_of": owner.map(|o| match o {
                            Ok(name) => serde_json::json!({"name": name}),
                            Err(id) => serde_json::json!({"id": format!("{id:#018x}"), "gone": true}),
                        }),
                        "objects": r.objects.iter().map(|o| serde_json::json!({
                            "name": o.name,
                            "kind": o.ty.kind.to_string(),
                            "fingerprint": format!("{:#018x}", o.ty.fingerprint),
                            "size": o.ty.size,
                            "pool": o.pool.map(|p| serde_json::json!({"capacity": p.capacity, "free": p.free})),
                        })).collect::<Vec<_>>(),
                        "ports": ports_json(r, &rates),
                        "participants": r.participants.iter().map(|p| serde_json::json!({
                            "row": p.row, "pid": p.pid, "id": format!("{:#018x}", p.id),
                            "alive": p.alive, "reclaiming": p.reclaiming,
                        })).collect::<Vec<_>>(),
                        "topics": domain_topics.iter().map(|t| {
                            let r = report_of(&t.segment);
                            topic_json(t, r, r.and_then(pool_of), &rates)
                        }).collect::<Vec<_>>(),
                    }));
                    continue;
                }
                let live = r.live_participants();
                let dead = r.participants.len() - live;
                let chunk = match &owner {
                    None => String::new(),
                    Some(Ok(o)) => format!("  (pool chunk of {o})"),
                    Some(Err(_)) => "  (pool chunk; its owner is gone)".to_owned(),
                };
                println!(
                    "{}  {} KiB  participants: {live} alive, {dead} dead{}{chunk}",
                    r.name,
                    r.size / 1024,
                    if r.closing { "  (closing)" } else { "" }
                );
                for o in &r.objects {
                    match (o.ty.kind, o.pool) {
                        (ObjectKind::POOL | ObjectKind::ARRAY_POOL, Some(p)) => println!(
                            "  {:<24} {:<12} {} of {} slots free",
                            o.name,
                            kind_name(o.ty.kind),
                            p.free,
                            p.capacity
                        ),
                        _ => println!(
                            "  {:<24} {:<12} {} bytes",
                            o.name,
                            kind_name(o.ty.kind),
                            o.ty.size
                        ),
                    }
                }
                print_ports(r, &rates, "  ");
                for p in &r.participants {
                    println!(
                        "  participant {:>2}: pid {} {}",
                        p.row,
                        p.pid,
                        if p.alive {
                            "alive"
                        } else if p.reclaiming {
                            "dead, being reclaimed"
                        } else {
                            "dead"
                        }
                    );
                }
                for t in domain_topics {
                    let r = report_of(&t.segment);
                    print_topic(t, r, r.and_then(pool_of), &rates);
                }
            }
            Err(e) => {
                if json {
                    rows.push(serde_json::json!({"name": name, "error": e.to_string()}));
                } else {
                    println!("{name}  unreadable: {e}");
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
    }
    ExitCode::SUCCESS
}

/// Slots of a topic's pool over every live chunk: free, capacity, chunks.
#[derive(Debug, Clone, Copy)]
struct PoolUse {
    free: u64,
    capacity: u64,
    chunks: usize,
}

/// The pool use of the topic segment `r`: its own pool plus the pools of
/// the chunk segments it owns (a growable topic's later chunks).
fn topic_pool(
    r: &SegmentReport,
    reports: &[(String, Result<SegmentReport, shmidl::SegmentOpenError>)],
) -> Option<PoolUse> {
    let first = r.objects.iter().find_map(|o| o.pool)?;
    let mut total = PoolUse {
        free: u64::from(first.free),
        capacity: u64::from(first.capacity),
        chunks: 1,
    };
    let chunks = reports
        .iter()
        .filter_map(|(_, c)| c.as_ref().ok())
        .filter(|c| c.owner_id == Some(r.id));
    for chunk in chunks {
        if let Some(p) = chunk.objects.iter().find_map(|o| o.pool) {
            total.free += u64::from(p.free);
            total.capacity += u64::from(p.capacity);
            total.chunks += 1;
        }
    }
    Some(total)
}

/// A topic under its domain: type, configuration, and its segment's state.
fn print_topic(
    t: &TopicInfo,
    segment: Option<&SegmentReport>,
    pool: Option<PoolUse>,
    rates: &Rates,
) {
    let elements = match t.config.elements {
        0 => String::new(),
        n => format!(", up to {n} elements per sample"),
    };
    println!(
        "  topic {}  {} ({:#018x})  pool {}×{}, depth {}, {:?}{elements}",
        t.name,
        t.type_name,
        t.fingerprint,
        t.config.pool,
        t.config.pool_chunks,
        t.config.depth,
        t.config.overflow
    );
    match segment {
        None => println!("    no segment (no process uses the topic now)"),
        Some(r) => {
            let live = r.live_participants();
            let dead = r.participants.len() - live;
            let chunks = match pool.map_or(1, |p| p.chunks) {
                1 => String::new(),
                n => format!(" in {n} chunks"),
            };
            println!(
                "    segment {}  {} KiB, {} of {} slots free{chunks}, processes: {live} alive, {dead} dead",
                r.name,
                r.size / 1024,
                pool.map_or(0, |p| p.free),
                pool.map_or(0, |p| p.capacity),
            );
            print_ports(r, rates, "    ");
        }
    }
}

fn topic_json(
    t: &TopicInfo,
    segment: Option<&SegmentReport>,
    pool: Option<PoolUse>,
    rates: &Rates,
) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "type": t.type_name,
        "fingerprint": format!("{:#018x}", t.fingerprint),
        "config": {
            "pool": t.config.pool,
            "pool_chunks": t.config.pool_chunks,
            "depth": t.config.depth,
            "overflow": format!("{:?}", t.config.overflow),
            "max_publishers": t.config.max_publishers,
            "max_subscribers": t.config.max_subscribers,
            "elements": t.config.elements,
        },
        "segment": t.segment,
        "live": segment.map(|r| serde_json::json!({
            "size": r.size,
            "pool": pool.map(|p| serde_json::json!({"capacity": p.capacity, "free": p.free, "chunks": p.chunks})),
            "processes_alive": r.live_participants(),
            "processes_dead": r.participants.len() - r.live_participants(),
            "ports": ports_json(r, rates),
        })),
    })
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::PLAIN => "object",
        ObjectKind::POOL => "pool",
        ObjectKind::ARRAY_POOL => "array pool",
        ObjectKind::ROUTER => "router",
        ObjectKind::TOPIC_REGISTRY => "topics",
        _ => "unknown",
    }
}

/// `shmidl clean`: removes segments whose participants are all dead (or
/// gone) and temporary files of creators that died; never a segment with
/// a live participant.
pub fn clean(dry_run: bool) -> ExitCode {
    let mut failed = false;
    let names = match Segment::list() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("shmidl clean: reading /dev/shm: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut said = !names.is_empty();
    for name in names {
        match Segment::remove_if_abandoned(&name, dry_run) {
            Ok(CleanOutcome::Removed { dead_participants }) => {
                println!("removed {name} ({dead_participants} dead participant(s))")
            }
            Ok(CleanOutcome::WouldRemove { dead_participants }) => {
                println!("would remove {name} ({dead_participants} dead participant(s))")
            }
            Ok(CleanOutcome::Kept { live_participants }) => {
                println!("kept {name} ({live_participants} live participant(s))")
            }
            Ok(CleanOutcome::KeptByOwner { owner }) => {
                println!("kept {name} (a pool chunk of {owner}, which exists)")
            }
            // Removed meanwhile, e.g. a pool chunk with its owner just above.
            Err(SegmentOpenError::NotFound { .. }) => {}
            Err(e) => {
                eprintln!("shmidl clean: {name}: {e} (left alone)");
                failed = true;
            }
        }
    }
    match Segment::clean_stale_temporaries(dry_run) {
        Ok(files) => {
            said |= !files.is_empty();
            for f in files {
                let verb = if dry_run { "would remove" } else { "removed" };
                println!("{verb} {f} (temporary file of a creator that died)");
            }
        }
        Err(e) => {
            eprintln!("shmidl clean: temporary files: {e}");
            failed = true;
        }
    }
    if !said {
        println!("nothing to clean: no shmidl segments in /dev/shm");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
