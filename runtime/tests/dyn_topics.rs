//! Topics of a type known only at run time (`DynType`, `DynMessage`)
//! share the registry record, pool and router of the typed topic: typed and
//! dynamic ends exchange messages either way, whoever creates the topic.

use std::sync::atomic::{AtomicU32, Ordering};

use shmidl::{
    wire, Bool, DynMessage, DynType, FixedSizeString, Join, Node, ShmMessage, ShmSafe, TopicConfig,
    TopicError,
};

#[derive(ShmMessage, Debug, Clone, PartialEq)]
#[repr(C)]
struct Reading {
    id: u32,
    ok: Bool,
    #[shm(padding)]
    __pad0: [u8; 3],
    label: FixedSizeString<12>,
    value: f64,
}

#[derive(ShmMessage, Debug, Clone, PartialEq)]
#[repr(C)]
struct Other {
    id: u32,
    more: u32,
}

fn domain(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t-dyn-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn reading(id: u32) -> Reading {
    Reading {
        id,
        ok: Bool::new(id % 2 == 0),
        __pad0: [0; 3],
        label: FixedSizeString::try_from("sensor").unwrap(),
        value: f64::from(id) * 0.5,
    }
}

#[test]
fn a_dynamic_subscriber_reads_what_a_typed_publisher_sends() {
    let node = Node::builder(&domain("t2d")).open_or_create().unwrap();
    let ty = DynType::of::<Reading>();
    let mut typed = node
        .publisher::<Reading>("readings", TopicConfig::default())
        .unwrap();
    let mut tool = node.dyn_subscriber("readings", &ty, Join::new()).unwrap();
    for id in 0..5 {
        typed
            .publish(typed.loan_uninit().unwrap().write(reading(id)))
            .unwrap();
        let got = tool.try_recv().unwrap().expect("a message");
        assert_eq!(got.len(), ty.size());
        let bytes = wire::encode_dyn(&ty, &got).unwrap();
        assert_eq!(Reading::decode(bytes).unwrap(), reading(id));
        assert_eq!(bytes, reading(id).encode_to_vec().unwrap());
    }
}

#[test]
fn a_dynamic_publisher_creates_the_topic_a_typed_subscriber_joins() {
    let node = Node::builder(&domain("d2t")).open_or_create().unwrap();
    let ty = DynType::of::<Reading>();
    let config = TopicConfig {
        pool: 16,
        depth: 4,
        ..TopicConfig::default()
    };
    let mut tool = node.dyn_publisher("readings", &ty, config).unwrap();
    assert_eq!(tool.dyn_type(), &ty);
    let mut typed = node.subscriber::<Reading>("readings", Join::new()).unwrap();
    assert_eq!(typed.router().pool().capacity(), 16);
    for id in 0..3 {
        let wire_form = reading(id).encode_to_vec().unwrap();
        let slot = tool.loan_uninit().unwrap();
        let sample = wire::decode_dyn_into(&ty, &wire_form, slot).unwrap();
        tool.publish(sample).unwrap();
        assert_eq!(*typed.try_recv().unwrap().unwrap(), reading(id));
    }
    let info = node.topics();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].type_name, ty.name());
    assert_eq!(info[0].fingerprint, Reading::FINGERPRINT);
}

#[test]
fn invalid_bytes_are_refused_and_the_slot_goes_back() {
    let node = Node::builder(&domain("bad")).open_or_create().unwrap();
    let ty = DynType::of::<Reading>();
    let tool = node
        .dyn_publisher("readings", &ty, TopicConfig::default())
        .unwrap();
    let free = tool.router().pool().free_count();
    let mut bad = reading(1).encode_to_vec().unwrap();
    bad[4] = 2; // a bool of 2
    let err = wire::decode_dyn_into(&ty, &bad, tool.loan_uninit().unwrap()).unwrap_err();
    assert!(matches!(err, wire::WireError::Bool { .. }), "{err}");
    let short = &bad[..10];
    let err = wire::decode_dyn_into(&ty, short, tool.loan_uninit().unwrap()).unwrap_err();
    assert!(
        matches!(err, wire::WireError::Length { expected, found: 10, .. } if expected == ty.size()),
        "{err}"
    );
    assert_eq!(tool.router().pool().free_count(), free);
    assert!(wire::validate_dyn(&ty, &reading(3).encode_to_vec().unwrap()).is_ok());
}

#[test]
fn another_type_is_refused_with_both_names() {
    let node = Node::builder(&domain("mismatch")).open_or_create().unwrap();
    let _typed = node
        .publisher::<Reading>("readings", TopicConfig::default())
        .unwrap();
    let err = node
        .dyn_subscriber("readings", &DynType::of::<Other>(), Join::new())
        .unwrap_err();
    assert!(matches!(err, TopicError::TypeMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("Reading") && text.contains("Other"), "{text}");
}

#[test]
fn a_dynmessage_topic_needs_its_type() {
    let node = Node::builder(&domain("needs")).open_or_create().unwrap();
    let err = node
        .subscriber::<DynMessage>("readings", TopicConfig::default())
        .unwrap_err();
    assert!(err.to_string().contains("dyn_router"), "{err}");
}

#[test]
fn dyn_types_are_checked() {
    let ty = DynType::of::<Reading>();
    assert_eq!(ty.size(), std::mem::size_of::<Reading>());
    assert_eq!(ty.align(), std::mem::align_of::<Reading>());
    assert_eq!(ty.fingerprint(), Reading::FINGERPRINT);
    assert!(ty.name().ends_with("Reading"), "{}", ty.name());
    assert_eq!(DynType::new(Reading::LAYOUT).unwrap(), ty);
    assert_ne!(DynType::of::<Other>(), ty);
}
