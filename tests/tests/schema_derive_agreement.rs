//! Schema and derive agree: seven types of `tests/schema/agreement.shmidl`
//! declared by hand with `#[derive(ShmMessage)]` (`shmidl_tests::derived`)
//! have the schema compiler's fingerprints, sizes, alignments and field
//! offsets, and the same fingerprints as the generated code; a process with
//! the derived type and one with the generated type exchange messages, and
//! a derived type with another fingerprint is refused with `TypeMismatch`.

use std::time::{Duration, Instant};

use shmidl::{layout::TypeKind, Node, ShmEnum, ShmSafe};
use shmidl_tests::{derived, read_field, unique_name, wait_with_deadline};

include!(concat!(env!("OUT_DIR"), "/golden.rs"));

use golden::agreement::agree::v1 as generated;

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

fn schema() -> shmidl_idl::Schema {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/agreement.shmidl");
    shmidl_idl::load(path, &[]).expect("the agreement schema is valid")
}

/// Fingerprint, size, alignment and every field offset of `layout` equal
/// the schema's for `qualified`.
fn agrees(schema: &shmidl_idl::Schema, qualified: &str, layout: &shmidl::layout::TypeLayout) {
    let def = schema.type_by_name(qualified).unwrap();
    assert_eq!(
        layout.fingerprint, def.fingerprint,
        "{qualified}: fingerprint"
    );
    assert_eq!(layout.size as u64, def.layout.size, "{qualified}: size");
    assert_eq!(layout.align as u64, def.layout.align, "{qualified}: align");
    assert_eq!(
        layout.describe_def(),
        schema.describe_def(def.id),
        "{qualified}"
    );
    if let (shmidl_idl::TypeDefKind::Struct(s), TypeKind::Struct { fields, .. }) =
        (&def.kind, layout.kind)
    {
        let data: Vec<_> = fields.iter().filter(|f| !f.padding).collect();
        assert_eq!(data.len(), s.fields.len(), "{qualified}");
        for (rust, idl) in data.iter().zip(&s.fields) {
            assert_eq!(
                (rust.name, rust.offset as u64),
                (idl.name.as_str(), idl.offset)
            );
        }
    }
}

#[test]
fn seven_derived_types_agree_with_the_schema_and_the_generated_code() {
    let schema = schema();
    agrees(&schema, "agree.v1.Mode", derived::Mode::LAYOUT);
    agrees(&schema, "agree.v1.Dir", derived::Dir::LAYOUT);
    agrees(&schema, "agree.v1.Vec3", derived::Vec3::LAYOUT);
    agrees(&schema, "agree.v1.JointState", derived::JointState::LAYOUT);
    agrees(&schema, "agree.v1.Text", derived::Text::LAYOUT);
    agrees(&schema, "agree.v1.Steps", derived::Steps::LAYOUT);
    agrees(&schema, "agree.v1.Grid", derived::Grid::LAYOUT);
    agrees(&schema, "agree.v1.Keywords", derived::Keywords::LAYOUT);

    assert_eq!(
        <derived::Mode as ShmEnum>::FINGERPRINT,
        <generated::Mode as ShmEnum>::FINGERPRINT
    );
    assert_eq!(
        <derived::Dir as ShmEnum>::FINGERPRINT,
        <generated::Dir as ShmEnum>::FINGERPRINT
    );
    let pairs = [
        (derived::Vec3::FINGERPRINT, generated::Vec3::FINGERPRINT),
        (
            derived::JointState::FINGERPRINT,
            generated::JointState::FINGERPRINT,
        ),
        (derived::Text::FINGERPRINT, generated::Text::FINGERPRINT),
        (derived::Steps::FINGERPRINT, generated::Steps::FINGERPRINT),
        (derived::Grid::FINGERPRINT, generated::Grid::FINGERPRINT),
        (
            derived::Keywords::FINGERPRINT,
            generated::Keywords::FINGERPRINT,
        ),
    ];
    for (d, g) in pairs {
        assert_eq!(d, g);
    }
    assert_ne!(
        derived::WrongJointState::FINGERPRINT,
        generated::JointState::FINGERPRINT
    );
}

#[test]
fn a_derived_producer_and_a_generated_consumer_exchange_messages() {
    let domain = unique_name("agree");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let mut subscriber = generated::topics::agree_joints::subscriber(&node).unwrap();

    let producer = shmidl_tests::spawn_child(CHILD, &["agree-publish", &domain, "100"]);
    for seq in 0..100u64 {
        let m = subscriber.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(m.stamp_ns, seq);
        let mode = if seq % 2 == 0 {
            generated::Mode::Run
        } else {
            generated::Mode::Fault
        };
        assert_eq!(m.mode.get(), Ok(mode));
        assert_eq!(m.position.len(), 4);
        assert_eq!(m.names[3], format!("j3-{seq}").as_str());
        assert_eq!(m.position[2], seq as f64 + 0.2);
        assert_eq!((m.pose.x, m.pose.y, m.pose.z), (seq as f64, -1.0, 0.5));
    }
    let out = wait_with_deadline(producer, Instant::now() + Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");

    // Another process with a mismatching derived type is refused.
    let mut wrong = shmidl_tests::spawn_child(CHILD, &["agree-wrong", &domain]);
    let refused = read_field(&mut wrong, "refused", Duration::from_secs(30)).unwrap();
    assert!(
        refused.contains("topic `agree/joints` carries `agree.v1.JointState`")
            && refused.contains(&format!("{:#018x}", generated::JointState::FINGERPRINT))
            && refused.contains(&format!("{:#018x}", derived::WrongJointState::FINGERPRINT)),
        "{refused}"
    );
    let out = wait_with_deadline(wrong, Instant::now() + Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
}
