//! The run-time layouts `shmidl bridge` builds from a schema
//! (`shmidl_cli::dyn_schema`) are the layouts of the code generated from the
//! same schema: same name, fingerprint, size, alignment and fields (padding
//! included), and the wire codec accepts exactly the same bytes through
//! either (a property test over random messages), so a bridge validates a
//! message as a compiled program would.

use proptest::prelude::*;
use shmidl::{layout::TypeKind, layout::TypeLayout, wire, DynType, ShmSafe};
use shmidl_cli::dyn_schema::Layouts;

include!(concat!(env!("OUT_DIR"), "/golden.rs"));

use golden::agreement::agree::v1 as generated;

fn schema() -> shmidl_idl::Schema {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/agreement.shmidl");
    shmidl_idl::load(path, &[]).expect("the agreement schema is valid")
}

fn built(schema: &shmidl_idl::Schema, name: &str) -> DynType {
    let id = schema.type_by_name(name).unwrap().id;
    Layouts::new(schema).dyn_type(id).unwrap()
}

/// Every field (offset, size, padding or not; names of data fields) and
/// every nested layout agree.
fn same_layout(a: &TypeLayout, b: &TypeLayout, at: &str) {
    assert_eq!(
        (a.size, a.align, a.plain, a.atomic),
        (b.size, b.align, b.plain, b.atomic),
        "{at}"
    );
    assert_eq!(a.describe(), b.describe(), "{at}");
    match (a.kind, b.kind) {
        (TypeKind::Struct { fields: fa, .. }, TypeKind::Struct { fields: fb, .. }) => {
            assert_eq!(fa.len(), fb.len(), "{at}: fields");
            for (x, y) in fa.iter().zip(fb) {
                assert_eq!(
                    (x.offset, x.padding),
                    (y.offset, y.padding),
                    "{at}.{}",
                    x.name
                );
                if !x.padding {
                    assert_eq!(x.name, y.name, "{at}");
                    assert_eq!(x.ty.fingerprint, y.ty.fingerprint, "{at}.{}", x.name);
                }
                same_layout(x.ty, y.ty, &format!("{at}.{}", x.name));
            }
        }
        (
            TypeKind::Array {
                element: ea,
                len: la,
            },
            TypeKind::Array {
                element: eb,
                len: lb,
            },
        ) => {
            assert_eq!(la, lb, "{at}");
            same_layout(ea, eb, &format!("{at}[]"));
        }
        (
            TypeKind::Sequence {
                element: ea,
                capacity: ca,
            },
            TypeKind::Sequence {
                element: eb,
                capacity: cb,
            },
        ) => {
            assert_eq!(ca, cb, "{at}");
            same_layout(ea, eb, &format!("{at}<>"));
        }
        (TypeKind::Enum { variants: va, .. }, TypeKind::Enum { variants: vb, .. }) => {
            let a: Vec<_> = va.iter().map(|v| (v.name, v.value)).collect();
            let b: Vec<_> = vb.iter().map(|v| (v.name, v.value)).collect();
            assert_eq!(a, b, "{at}");
        }
        _ => assert_eq!(
            std::mem::discriminant(&a.kind),
            std::mem::discriminant(&b.kind),
            "{at}"
        ),
    }
}

#[test]
fn every_message_of_the_schema_has_the_generated_layout() {
    let schema = schema();
    let pairs: [(&str, &TypeLayout); 6] = [
        ("agree.v1.Vec3", generated::Vec3::LAYOUT),
        ("agree.v1.JointState", generated::JointState::LAYOUT),
        ("agree.v1.Text", generated::Text::LAYOUT),
        ("agree.v1.Steps", generated::Steps::LAYOUT),
        ("agree.v1.Grid", generated::Grid::LAYOUT),
        ("agree.v1.Keywords", generated::Keywords::LAYOUT),
    ];
    for (name, layout) in pairs {
        let ty = built(&schema, name);
        assert_eq!(ty, DynType::new(layout).unwrap(), "{name}");
        same_layout(ty.layout(), layout, name);
    }
}

/// Bytes of a message: mostly zero (valid) with a few bytes set, so that
/// both valid and invalid messages come up.
fn message(size: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((0..size, any::<u8>()), 0..4).prop_map(move |sets| {
        let mut bytes = vec![0u8; size];
        for (at, v) in sets {
            bytes[at] = v % 4;
        }
        bytes
    })
}

macro_rules! agreement {
    ($test:ident, $ty:ident) => {
        proptest! {
            #[test]
            fn $test(bytes in message(std::mem::size_of::<generated::$ty>())) {
                let ty = built(&schema(), concat!("agree.v1.", stringify!($ty)));
                // The same verdict and the same error (no error of a
                // fixed-size message names its type).
                prop_assert_eq!(
                    wire::validate_dyn(&ty, &bytes),
                    wire::validate::<generated::$ty>(&bytes)
                );
            }
        }
    };
}

agreement!(text_validates_alike, Text);
agreement!(steps_validate_alike, Steps);
agreement!(joint_state_validates_alike, JointState);
agreement!(grid_validates_alike, Grid);
