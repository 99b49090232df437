//! `shmidl bridge`: forwards topics of a schema between a domain's shared
//! memory and the network, with no Rust code of their types. Each topic's
//! type comes from the schema at run time ([`shmidl_cli::dyn_schema`]), so the
//! local topic is the one typed programs of the same schema use, and the
//! frames are the ones their `net_publisher`/`net_subscriber` exchange.

use std::{
    collections::BTreeSet, io::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode,
    time::Duration,
};

use shmidl::{
    net::{ws::SlowPolicy, BridgeError, DynBridge, NetPublisher, NetSubscriber},
    DynType, Node, SendMode, TopicConfig,
};
use shmidl_idl::{Overflow, Schema};

use shmidl_cli::dyn_schema::Layouts;

use crate::spy::NetArgs;

/// The options of `shmidl bridge`.
#[derive(clap::Args)]
pub struct Args {
    /// The shared-memory domain (`Node::builder(NAME)`).
    #[arg(long)]
    domain: String,
    /// Forward this local topic to the network (repeat for more).
    #[arg(long = "out", value_name = "TOPIC")]
    out: Vec<String>,
    /// Publish this network topic to local subscribers (repeat for more).
    /// A topic both --out and --in is bridged both ways, never echoing.
    #[arg(long = "in", value_name = "TOPIC")]
    inbound: Vec<String>,
    /// Schema files declaring the topics.
    #[arg(short = 's', long = "schema", required = true)]
    schemas: Vec<PathBuf>,
    /// Directories searched for the schemas' imports.
    #[arg(short = 'I', long = "include")]
    includes: Vec<PathBuf>,
    /// Where --out topics are served (a port per topic: 0 picks any free
    /// one, announced through discovery).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// Connect an --in topic to this publisher instead of following
    /// discovery: TOPIC=ws://host:port/path (repeat for more).
    #[arg(long = "connect", value_name = "TOPIC=URL")]
    connect: Vec<String>,
    /// Do not announce --out topics on the network (subscribers then need
    /// their URL).
    #[arg(long)]
    no_announce: bool,
    /// What an --out topic does with a receiver that does not keep up:
    /// wait (up to 1 s per message), drop-oldest or disconnect.
    #[arg(long, default_value = "wait", value_parser = parse_policy)]
    slow: SlowPolicy,
    /// Time between two reports of the counters.
    #[arg(long, default_value = "1s", value_parser = crate::spy::parse_duration)]
    interval: Duration,
    /// Stop after this long (e.g. 30s); default: until Ctrl-C or SIGTERM.
    #[arg(long = "for", value_parser = crate::spy::parse_duration)]
    duration: Option<Duration>,
    /// Report the counters as JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
}

fn parse_policy(s: &str) -> Result<SlowPolicy, String> {
    match s {
        "wait" => Ok(SlowPolicy::Wait(Duration::from_secs(1))),
        "drop-oldest" => Ok(SlowPolicy::DropOldest),
        "disconnect" => Ok(SlowPolicy::Disconnect),
        _ => Err(format!("`{s}`: expected wait, drop-oldest or disconnect")),
    }
}

/// One bridged topic.
struct Running {
    topic: String,
    type_name: String,
    bridge: DynBridge,
}

pub fn run(args: &Args) -> ExitCode {
    match start_and_wait(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&e);
            ExitCode::FAILURE
        }
    }
}

fn start_and_wait(args: &Args) -> Result<(), String> {
    if args.out.is_empty() && args.inbound.is_empty() {
        return Err("nothing to bridge: give at least one --out or --in topic".into());
    }
    let schema = shmidl_idl::load_all(&args.schemas, &args.includes)
        .map_err(|diagnostics| format!("the schema does not load:\n{diagnostics}"))?;
    let out: BTreeSet<&str> = args.out.iter().map(String::as_str).collect();
    let inbound: BTreeSet<&str> = args.inbound.iter().map(String::as_str).collect();
    let mut connect = Vec::new();
    for spec in &args.connect {
        let (topic, url) = spec
            .split_once('=')
            .ok_or_else(|| format!("--connect `{spec}`: expected TOPIC=ws://host:port/path"))?;
        if !inbound.contains(topic) {
            return Err(format!(
                "--connect names `{topic}`, which is not an --in topic"
            ));
        }
        connect.push((topic.to_owned(), url.to_owned()));
    }
    if args.bind.port() != 0 && out.len() > 1 {
        return Err(format!(
            "--bind {} gives one port for {} --out topics; each topic is served on a port of \
             its own: use port 0",
            args.bind,
            out.len()
        ));
    }
    let config = args.net.config()?;
    let node = Node::builder(&args.domain)
        .open_or_create()
        .map_err(|e| format!("domain `{}`: {e}", args.domain))?;
    let mut layouts = Layouts::new(&schema);
    let mut running = Vec::new();
    for topic in out.union(&inbound) {
        let (ty, topic_config) = topic_of(&schema, &mut layouts, topic)?;
        let publisher = out.contains(topic).then(|| {
            let mut builder = NetPublisher::builder(topic)
                .bind(args.bind)
                .slow_policy(args.slow);
            if let Some(secret) = &config.secret {
                builder = builder.secret(secret.clone());
            }
            if !args.no_announce {
                builder = builder.announce(config.clone());
            }
            builder
        });
        let subscriber = inbound.contains(topic).then(|| {
            let mut builder = NetSubscriber::raw(Some(ty.fingerprint())).discovery(config.clone());
            let urls: Vec<&str> = connect
                .iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, url)| url.as_str())
                .collect();
            if urls.is_empty() {
                builder = builder.topic(topic);
            }
            for url in urls {
                builder = builder.endpoint(url);
            }
            builder
        });
        let started: Result<DynBridge, BridgeError> = match (publisher, subscriber) {
            (Some(p), Some(s)) => DynBridge::both(&node, topic, &ty, topic_config, p, s),
            (Some(p), None) => DynBridge::out(&node, topic, &ty, topic_config, p),
            (None, Some(s)) => DynBridge::inbound(&node, topic, &ty, topic_config, s),
            (None, None) => unreachable!("every topic is --out or --in"),
        };
        let bridge = started.map_err(|e| format!("topic `{topic}`: {e}"))?;
        let direction = match (out.contains(topic), inbound.contains(topic)) {
            (true, true) => "both ways",
            (true, false) => "out",
            _ => "in",
        };
        let served = bridge
            .publisher()
            .map(|p| format!(" serving {}", p.url()))
            .unwrap_or_default();
        say(&format!(
            "bridging `{topic}` ({}) of domain `{}` {direction}{served}",
            ty.name(),
            args.domain
        ));
        running.push(Running {
            topic: (*topic).to_owned(),
            type_name: ty.name().to_owned(),
            bridge,
        });
    }
    let why = wait(args, &running)?;
    say(&format!("stopping ({why})"));
    report(args.json, &running, true);
    // The bridges stop (their threads joined, goodbyes sent) before the
    // node leaves its domain.
    drop(running);
    drop(node);
    Ok(())
}

/// The topic `name` of the schema: its run-time type and its options as
/// the generated `config()` gives them, so typed programs join the same
/// topic.
fn topic_of(
    schema: &Schema,
    layouts: &mut Layouts<'_>,
    name: &str,
) -> Result<(DynType, TopicConfig), String> {
    let Some(topic) = schema.topics().iter().find(|t| t.name == name) else {
        let known: Vec<&str> = schema.topics().iter().map(|t| t.name.as_str()).collect();
        return Err(if known.is_empty() {
            format!("topic `{name}` is not in the schema, which declares no topics")
        } else {
            format!(
                "topic `{name}` is not in the schema; it declares: {}",
                known.join(", ")
            )
        });
    };
    let ty = layouts
        .dyn_type(topic.payload)
        .map_err(|e| format!("topic `{name}`: {e}"))?;
    let o = &topic.options;
    let overflow = match o.overflow {
        Overflow::OverwriteOldest => SendMode::OverwriteOldest,
        Overflow::SoftFail => SendMode::SoftFailIfFull,
        _ => SendMode::WaitIfFull(Duration::from_secs(1)),
    };
    let config = TopicConfig {
        pool: o.pool,
        pool_chunks: o.pool_chunks,
        depth: o.depth,
        overflow,
        max_publishers: o.max_publishers,
        max_subscribers: o.max_subscribers,
        elements: 0,
    };
    Ok((ty, config))
}

/// Reports the counters every interval until Ctrl-C, SIGTERM or the end
/// of `--for`; says which.
fn wait(args: &Args, running: &[Running]) -> Result<&'static str, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime for signals: {e}"))?;
    rt.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        let end = args.duration.map(|d| tokio::time::Instant::now() + d);
        let mut ticks = tokio::time::interval(args.interval.max(Duration::from_millis(10)));
        ticks.tick().await;
        loop {
            let until_end = async {
                match end {
                    Some(end) => tokio::time::sleep_until(end).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok("interrupted"),
                _ = terminate.recv() => return Ok("terminated"),
                () = until_end => return Ok("--for elapsed"),
                _ = ticks.tick() => report(args.json, running, false),
            }
        }
    })
}

/// Prints every topic's counters (and its peers'), as text or JSON lines.
fn report(json: bool, running: &[Running], last: bool) {
    let mut out = std::io::stdout().lock();
    for r in running {
        let s = r.bridge.stats();
        let net = r.bridge.publisher().map(|p| p.stats());
        let peers = r.bridge.peers();
        let line = if json {
            let net_json = net.as_ref().map_or(serde_json::Value::Null, |n| {
                serde_json::json!({
                    "url": r.bridge.publisher().map(|p| p.url()),
                    "connections": n.connections,
                    "written": n.written,
                    "dropped_timeout": n.dropped_timeout,
                    "dropped_oldest": n.dropped_oldest,
                    "disconnected_slow": n.disconnected_slow,
                    "unauthorized": n.unauthorized,
                    "per_connection": r.bridge.publisher().map(|p| {
                        p.connection_stats()
                            .iter()
                            .map(|c| serde_json::json!({
                                "peer": c.peer.to_string(),
                                "written": c.written,
                                "dropped": c.dropped,
                                "queued": c.queued,
                            }))
                            .collect::<Vec<_>>()
                    }),
                })
            });
            let peers: Vec<_> = peers
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "endpoint": p.endpoint,
                        "messages": p.messages,
                        "bytes": p.bytes,
                        "dropped": p.dropped,
                    })
                })
                .collect();
            serde_json::json!({
                "topic": r.topic,
                "type": r.type_name,
                "final": last,
                "out_messages": s.out_messages,
                "out_bytes": s.out_bytes,
                "out_failed": s.out_failed,
                "out_skipped_own": s.out_skipped_own,
                "in_messages": s.in_messages,
                "in_bytes": s.in_bytes,
                "in_dropped": s.in_dropped,
                "in_skipped_own": s.in_skipped_own,
                "publisher": net_json,
                "peers": peers,
            })
            .to_string()
        } else {
            let mut text = format!(
                "{}{}: out {} msg {} B ({} failed, {} echo skipped), in {} msg {} B ({} dropped, \
                 {} echo skipped)",
                if last { "final " } else { "" },
                r.topic,
                s.out_messages,
                s.out_bytes,
                s.out_failed,
                s.out_skipped_own,
                s.in_messages,
                s.in_bytes,
                s.in_dropped,
                s.in_skipped_own
            );
            if let Some(n) = &net {
                text.push_str(&format!(
                    "\n  to {} connection(s): {} written, dropped {} (timeout) {} (oldest), \
                     {} slow disconnected, {} unauthorized",
                    n.connections,
                    n.written,
                    n.dropped_timeout,
                    n.dropped_oldest,
                    n.disconnected_slow,
                    n.unauthorized
                ));
            }
            for c in r
                .bridge
                .publisher()
                .map(|p| p.connection_stats())
                .unwrap_or_default()
            {
                text.push_str(&format!(
                    "\n  to {}: {} written, {} dropped, {} queued",
                    c.peer, c.written, c.dropped, c.queued
                ));
            }
            for p in &peers {
                text.push_str(&format!(
                    "\n  from {}: {} msg {} B, {} dropped",
                    p.endpoint, p.messages, p.bytes, p.dropped
                ));
            }
            text
        };
        // A closed stdout (the reader went away) is not the bridge's
        // business: it keeps running until told to stop.
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// A status line, on stderr so that stdout carries only counters. A
/// closed stderr does not stop the bridge.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "shmidl bridge: {line}");
}
