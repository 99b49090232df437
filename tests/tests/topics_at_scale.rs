//! Topics at an application's scale, with real processes: a segment per
//! topic (a 64 MiB camera topic next to a thousand small ones in a default
//! domain), the lifetime of a topic's segment, joining with the creator's
//! settings, and the errors for another type or another configuration.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::{Join, Node, SendMode, TopicConfig, TopicError};
use shmidl_tests::{read_field, unique_name, wait_with_deadline};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

fn child(args: &[&str]) -> std::process::Child {
    Command::new(CHILD)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the child")
}

/// Each open topic segment costs a descriptor, and a thousand of them may
/// pass the common soft limit of 1,024: raise it to the hard one.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).expect("raising RLIMIT_NOFILE");
}

#[test]
fn a_default_domain_holds_a_64_mib_topic_and_a_thousand_small_ones() {
    raise_fd_limit();
    let domain = unique_name("scale");
    let node = Node::builder(&domain).open_or_create().unwrap();

    // 64 slots of 1 MiB: far more than any shared budget would allow.
    let camera = TopicConfig {
        pool: 64,
        ..TopicConfig::default()
    };
    let mut frames = node
        .publisher::<[u8; 1 << 20]>("cam/image", camera)
        .unwrap();

    let mut small = Vec::new();
    let mut join_times = Vec::new();
    for i in 0..1000 {
        let t = Instant::now();
        small.push(
            node.publisher::<u64>(&format!("small/{i}"), TopicConfig::default())
                .unwrap(),
        );
        join_times.push(t.elapsed());
    }
    let first: Duration = join_times[..10].iter().sum::<Duration>() / 10;
    let last: Duration = join_times[990..].iter().sum::<Duration>() / 10;
    eprintln!("joining a new topic: first ten {first:?} each, last ten {last:?} each");
    assert_eq!(node.topics().len(), 1001);
    // One descriptor per open segment (the domain and 1,001 topics), plus
    // what the test harness itself holds.
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    assert!(fds < 1002 + 64, "{fds} descriptors open for 1,002 segments");

    // Another process joins the camera and three small topics, accepting
    // their settings, and checks what arrives.
    let mut c = child(&[
        "topic-join",
        &domain,
        "big:cam/image,small/0,small/500,small/999",
    ]);
    assert_eq!(
        read_field(&mut c, "ready", Duration::from_secs(60)).as_deref(),
        Some("1")
    );
    let mut frame = frames.loan_zeroed().unwrap();
    frame.fill(0xab);
    assert_eq!(frames.publish(frame).unwrap(), 0);
    for i in [0usize, 500, 999] {
        let mut m = small[i].loan().unwrap();
        *m = i as u64;
        assert_eq!(small[i].publish(m).unwrap(), 0);
    }
    let out = wait_with_deadline(c, Instant::now() + Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");

    drop((frames, small));
    assert!(
        node.topic_segments().is_empty(),
        "ports gone, segments left"
    );
    for topic in node.topics() {
        assert!(
            !std::path::Path::new(&format!("/dev/shm/shmidl.{}", topic.segment)).exists(),
            "{} outlived its last user",
            topic.name
        );
    }
}

#[test]
fn a_topic_segment_lives_exactly_as_long_as_its_users() {
    let domain = unique_name("life");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let publisher = node
        .publisher::<u64>("life/x", TopicConfig::default())
        .unwrap();
    let segment = node.topics()[0].segment.clone();
    let path = format!("/dev/shm/shmidl.{segment}");
    assert!(std::path::Path::new(&path).exists());

    let mut holder = child(&["topic-hold", &domain, "life/x"]);
    let stdin = holder.stdin.take().unwrap();
    assert_eq!(
        read_field(&mut holder, "ready", Duration::from_secs(30)).as_deref(),
        Some("1")
    );
    drop(publisher);
    assert!(node.topic_segments().is_empty());
    assert!(
        std::path::Path::new(&path).exists(),
        "the other process still uses the topic"
    );
    drop(stdin); // the holder leaves
    let out = wait_with_deadline(holder, Instant::now() + Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    assert!(
        !std::path::Path::new(&path).exists(),
        "the last user left: the topic's segment is gone"
    );
    // The topic is still known, and comes back with its settings.
    let again = node.subscriber::<u64>("life/x", Join::new()).unwrap();
    assert!(std::path::Path::new(&path).exists());
    drop(again);
    // The domain segment itself never held topic data.
    assert!(node.segment().size() < 4 << 20);
    let _ = std::io::stdout().flush();
}

#[test]
fn joining_accepts_the_creators_settings_and_checks_only_minimums() {
    let domain = unique_name("join");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        depth: 32,
        overflow: SendMode::OverwriteOldest,
        ..TopicConfig::default()
    };
    let mut publisher = node.publisher::<u64>("j/x", config).unwrap();
    let mut subscriber = node
        .subscriber::<u64>("j/x", Join::new().min_depth(16))
        .unwrap();
    let mut m = publisher.loan().unwrap();
    *m = 5;
    publisher.publish(m).unwrap();
    assert_eq!(*subscriber.try_recv().unwrap().unwrap(), 5);

    let err = node
        .subscriber::<u64>("j/x", Join::new().min_depth(64))
        .unwrap_err();
    assert!(matches!(
        err,
        TopicError::Unmet {
            what: "depth",
            existing: 32,
            required: 64,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "topic `j/x` has depth 32; this process requires at least 64"
    );
}

#[test]
fn another_configuration_is_refused_with_both_configurations() {
    let domain = unique_name("cfg");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let _p = node
        .publisher::<u64>("c/x", TopicConfig::default())
        .unwrap();
    let other = TopicConfig {
        depth: 16,
        overflow: SendMode::OverwriteOldest,
        ..TopicConfig::default()
    };
    let err = node.subscriber::<u64>("c/x", other).unwrap_err();
    assert!(matches!(err, TopicError::ConfigMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("depth 8, overflow WaitIfFull(1s)")
            && text.contains("depth 16, overflow OverwriteOldest"),
        "{text}"
    );
}

#[test]
fn another_type_is_refused_naming_the_topic_both_types_and_fingerprints() {
    let domain = unique_name("type");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let _p = node
        .publisher::<[u32; 4]>("probe/pose", TopicConfig::default())
        .unwrap();
    let err = node
        .subscriber::<[u32; 5]>("probe/pose", Join::new())
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "topic `probe/pose` carries `[u32; 4]` (fingerprint 0xe89a81911de58196), \
         not `[u32; 5]` (fingerprint 0x0795489a28d4cbb7)"
    );
}

#[test]
fn an_unused_topic_can_be_redefined() {
    let domain = unique_name("redef");
    let node = Node::builder(&domain).open_or_create().unwrap();
    drop(
        node.publisher::<u64>("r/x", TopicConfig::default())
            .unwrap(),
    );
    // Nobody uses it now: a new definition replaces the old one.
    let p = node
        .publisher::<u32>(
            "r/x",
            TopicConfig {
                depth: 4,
                ..TopicConfig::default()
            },
        )
        .unwrap();
    assert_eq!(node.topics()[0].type_name, "u32");
    assert_eq!(node.topics()[0].config.depth, 4);
    drop(p);
}

#[test]
fn a_full_topic_names_the_limit_and_the_setting_that_raises_it() {
    let domain = unique_name("ports");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        max_subscribers: 1,
        ..TopicConfig::default()
    };
    let _first = node.subscriber::<u64>("p/x", config).unwrap();
    let text = node
        .subscriber::<u64>("p/x", config)
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("topic `p/x`: ")
            && text.contains("all 1 in use")
            && text.contains("TopicConfig::max_subscribers"),
        "{text}"
    );
}

/// A subscriber that joins (`Join`) before any process defined the topic
/// creates it with the defaults; the defining process, started second, is
/// then refused, and the error says why and what to do. Once the joiner
/// left, the definition takes over.
#[test]
fn a_joiner_that_came_first_is_named_when_the_defining_process_is_refused() {
    let domain = unique_name("first");
    let mut holder = child(&["topic-hold", &domain, "f/x"]);
    let stdin = holder.stdin.take().unwrap();
    assert_eq!(
        read_field(&mut holder, "ready", Duration::from_secs(30)).as_deref(),
        Some("1")
    );
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        depth: 32,
        overflow: SendMode::OverwriteOldest,
        ..TopicConfig::default()
    };
    let err = node.publisher::<u64>("f/x", config).unwrap_err();
    assert!(
        matches!(
            err,
            TopicError::ConfigMismatch {
                created_by_join: true,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("depth 8, overflow WaitIfFull(1s)")
            && text.contains("depth 32, overflow OverwriteOldest")
            && text.contains("start the defining process first"),
        "{text}"
    );
    drop(stdin); // the joiner leaves
    let out = wait_with_deadline(holder, Instant::now() + Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let publisher = node.publisher::<u64>("f/x", config).unwrap();
    assert_eq!(node.topics()[0].config, config);
    drop(publisher);
}

/// A configuration no topic can be made with is refused before it is
/// written to the domain's registry, with the topic's name in the error.
#[test]
fn a_configuration_that_cannot_be_created_names_the_topic_and_leaves_no_entry() {
    let domain = unique_name("badcfg");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let with = |f: fn(&mut TopicConfig)| {
        let mut c = TopicConfig::default();
        f(&mut c);
        c
    };
    for (topic, config, says) in [
        ("bad/pool", with(|c| c.pool = 0), "invalid pool geometry"),
        ("bad/chunks", with(|c| c.pool_chunks = 33), "1 ..= 32"),
        (
            "bad/depth",
            with(|c| c.depth = 0),
            "invalid router configuration",
        ),
    ] {
        let text = node
            .publisher::<u64>(topic, config)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with(&format!("topic `{topic}`: ")) && text.contains(says),
            "{text}"
        );
    }
    let err = node
        .subscriber::<[u8]>("bad/slice", Join::new())
        .unwrap_err();
    assert!(matches!(err, TopicError::Elements { .. }), "{err}");
    assert!(node.topics().is_empty(), "{:?}", node.topics());
}

#[test]
fn an_exhausted_topic_pool_names_the_topic_and_the_setting_that_raises_it() {
    let domain = unique_name("exh");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        pool: 2,
        ..TopicConfig::default()
    };
    let publisher = node.publisher::<u64>("e/x", config).unwrap();
    let _held = [publisher.loan().unwrap(), publisher.loan().unwrap()];
    let err = publisher.loan().unwrap_err();
    assert_eq!(err.topic(), Some("e/x"));
    let text = err.to_string();
    assert!(
        text.contains("topic `e/x`")
            && text.contains("2 slots in use")
            && text.contains("TopicConfig::pool"),
        "{text}"
    );
}

/// Two openers of one unused topic with different configurations, at the
/// same moment, many times: never do both succeed. (Before, one could
/// redefine the topic between the other's reading its record and creating
/// its segment, and the two ended up in segments of different generations,
/// each believing it had the topic.) Each thread has a `Node` of its own:
/// its own mapping of the domain, participant row and topic segments.
#[test]
fn two_openers_racing_to_define_a_topic_never_both_get_it() {
    let domain = unique_name("race");
    let nodes = [
        Node::builder(&domain).open_or_create().unwrap(),
        Node::builder(&domain).open_or_create().unwrap(),
    ];
    let configs = [
        TopicConfig::default(),
        TopicConfig {
            depth: 4,
            ..TopicConfig::default()
        },
    ];
    let barrier = std::sync::Barrier::new(2);
    let mut both = 0;
    let mut neither = 0;
    for round in 0..300 {
        let topic = format!("race/t{}", round % 20);
        let got: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|k| {
                    let (node, config, barrier, topic) = (&nodes[k], configs[k], &barrier, &topic);
                    s.spawn(move || {
                        barrier.wait();
                        let opened = node.publisher::<u64>(topic, config);
                        // Both hold what they got until both have tried.
                        barrier.wait();
                        match opened {
                            Ok(_) => true,
                            Err(
                                TopicError::ConfigMismatch { .. } | TopicError::Contended { .. },
                            ) => false,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        both += usize::from(got.iter().all(|&g| g));
        neither += usize::from(got.iter().all(|&g| !g));
    }
    assert_eq!(
        both, 0,
        "both openers got the topic with different configurations"
    );
    assert!(neither < 300, "no opener ever got the topic");
}

/// Out of file descriptors (each open topic keeps one), opening a topic
/// fails with an error that names the limit to raise, and leaves no
/// segment behind in /dev/shm once the process is gone.
#[test]
fn running_out_of_descriptors_names_the_limit_and_leaves_no_segment() {
    let domain = unique_name("fdlim");
    let proc = child(&["fd-limit", &domain, "48"]);
    let out = wait_with_deadline(proc, Instant::now() + Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    let opened: u32 = field("opened").parse().unwrap();
    let error = field("error");
    assert!(
        (20..48).contains(&opened),
        "{opened} topics under a limit of 48"
    );
    assert!(
        error.starts_with("topic `fd/t") && error.contains("ulimit -n"),
        "{error}"
    );
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(&domain))
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

/// The schema language and `Node` agree on the longest topic name: a name
/// the checker accepts opens, one byte more is refused by both.
#[test]
fn the_schema_and_the_runtime_agree_on_the_longest_topic_name() {
    assert_eq!(shmidl::MAX_TOPIC_LEN, shmidl_idl::MAX_TOPIC_NAME_LEN);
    let domain = unique_name("namelen");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let longest = format!("a/{}", "b".repeat(shmidl::MAX_TOPIC_LEN - 2));
    drop(
        node.publisher::<u64>(&longest, TopicConfig::default())
            .unwrap(),
    );
    let err = node
        .publisher::<u64>(&format!("{longest}c"), TopicConfig::default())
        .unwrap_err();
    assert!(matches!(err, TopicError::InvalidTopic { .. }), "{err}");
}

/// A domain whose topic names change over its life does not fill up with
/// topics of the past: when every registry entry is taken, those of topics
/// no process uses are reused; those in use never are.
#[test]
fn the_entries_of_unused_topics_are_reused_when_the_registry_is_full() {
    let domain = unique_name("reuse");
    let node = Node::builder(&domain)
        .max_topics(4)
        .open_or_create()
        .unwrap();
    let held = node
        .publisher::<u64>("reuse/kept", TopicConfig::default())
        .unwrap();
    // Thirty topics opened and left, one after another, in four entries.
    for i in 0..30 {
        let topic = format!("reuse/t{i}");
        let mut p = node
            .publisher::<u64>(&topic, TopicConfig::default())
            .unwrap();
        let mut s = node.subscriber::<u64>(&topic, Join::new()).unwrap();
        let mut m = p.loan().unwrap();
        *m = i;
        p.publish(m).unwrap();
        assert_eq!(*s.try_recv().unwrap().unwrap(), i);
    }
    let names: Vec<String> = node.topics().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"reuse/kept".to_owned()), "{names:?}");
    assert!(names.contains(&"reuse/t29".to_owned()), "{names:?}");
    assert_eq!(names.len(), 4, "{names:?}");
    // Four topics in use: a fifth finds no entry, and the error says so.
    let in_use: Vec<_> = (0..3)
        .map(|i| {
            node.publisher::<u64>(&format!("reuse/busy{i}"), TopicConfig::default())
                .unwrap()
        })
        .collect();
    let err = node
        .publisher::<u64>("reuse/fifth", TopicConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, TopicError::RegistryFull { capacity: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("4 topics in use"), "{err}");
    drop((held, in_use));
    assert!(node
        .publisher::<u64>("reuse/fifth", TopicConfig::default())
        .is_ok());
}

/// Two processes' worth of openers (a `Node` each) churn through topics of
/// their own in a registry of two entries, each holding one topic at a
/// time: every open succeeds. An entry defined a moment ago, whose definer
/// is still creating its segment, is never taken from it (it would fail
/// with `Contended` or `RegistryFull` though only two topics are ever in
/// use).
#[test]
fn churning_through_topics_in_a_small_registry_never_fails() {
    let domain = unique_name("churn");
    let nodes = [
        Node::builder(&domain)
            .max_topics(2)
            .open_or_create()
            .unwrap(),
        Node::builder(&domain)
            .max_topics(2)
            .open_or_create()
            .unwrap(),
    ];
    std::thread::scope(|s| {
        for (k, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                for i in 0..1000 {
                    let topic = format!("c{k}/t{i}");
                    let p = node.publisher::<u64>(&topic, TopicConfig::default());
                    assert!(p.is_ok(), "{topic}: {}", p.unwrap_err());
                }
            });
        }
    });
}
