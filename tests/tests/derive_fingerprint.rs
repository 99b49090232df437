//! A derived struct and the same type in a `.shmidl` schema have the same
//! fingerprint, so a derive-based program and a schema-based one agree.

use std::sync::atomic::AtomicU32;

use shmidl::{ShmMessage, ShmSafe};

/// `struct Vec3 { x: f64, y: f64, z: f64 }` in `package robot.v1;`.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Vec3")]
struct Vec3 {
    x: f64,
    y: f64,
    z: f64,
}

/// Nested struct, arrays, a keyword field and explicit padding.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Sample")]
struct Sample {
    stamp_ns: u64,
    r#type: u8,
    #[shm(padding)]
    __pad0: [u8; 3],
    ids: [u32; 4],
    #[shm(padding)]
    __pad1: [u8; 4],
    poses: [Vec3; 2],
}

const SCHEMA: &str = "
package robot.v1;

struct Vec3 { x: f64, y: f64, z: f64 }

message Sample {
    stamp_ns: u64,
    type: u8,
    ids: [u32; 4],
    poses: [Vec3; 2],
}
";

fn schema_fingerprint(qualified_name: &str) -> u64 {
    let schema = shmidl_idl::parse_str("robot.shmidl", SCHEMA)
        .unwrap_or_else(|d| panic!("the test schema is invalid: {d:?}"));
    schema
        .type_by_name(qualified_name)
        .unwrap_or_else(|| panic!("no type {qualified_name} in the test schema"))
        .fingerprint
}

fn schema_size(qualified_name: &str) -> u64 {
    let schema = shmidl_idl::parse_str("robot.shmidl", SCHEMA).unwrap();
    schema.type_by_name(qualified_name).unwrap().layout.size
}

#[test]
fn vec3_has_the_pinned_fingerprint_of_the_schema_compiler() {
    assert_eq!(Vec3::FINGERPRINT, 0x02b4_5cb4_3104_7436);
    assert_eq!(Vec3::FINGERPRINT, schema_fingerprint("robot.v1.Vec3"));
}

#[test]
fn nested_arrays_keywords_and_padding_match_the_schema() {
    assert_eq!(Sample::FINGERPRINT, schema_fingerprint("robot.v1.Sample"));
    // Same layout as the schema computes: the explicit padding sits where
    // the schema's implicit padding is.
    assert_eq!(
        std::mem::size_of::<Sample>() as u64,
        schema_size("robot.v1.Sample")
    );
}

/// Without `#[shm(name)]` the struct's identifier is the name: this is the
/// root-package `Point`, not `robot.v1.Vec3`.
#[derive(ShmMessage)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

/// A tuple struct: fields are named `0`, `1`.
#[derive(ShmMessage)]
#[repr(C)]
struct Pair(u32, u32);

#[test]
fn the_default_name_is_the_identifier_and_tuple_fields_are_numbered() {
    let schema = shmidl_idl::parse_str(
        "root.shmidl",
        "struct Point { x: f64, y: f64 }\nstruct Pair { a: u32, b: u32 }",
    )
    .unwrap();
    assert_eq!(
        Point::FINGERPRINT,
        schema.type_by_name("Point").unwrap().fingerprint
    );
    let by_hand = shmidl::fingerprint::struct_start("Pair", 2)
        .str("0")
        .u64(u32::FINGERPRINT)
        .str("1")
        .u64(u32::FINGERPRINT)
        .finish();
    assert_eq!(Pair::FINGERPRINT, by_hand);
    // The schema's `Pair` names its fields, so it is another type.
    assert_ne!(
        Pair::FINGERPRINT,
        schema.type_by_name("Pair").unwrap().fingerprint
    );
}

/// Field names, field order and the type name are all part of the type.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Vec3")]
struct Vec3Renamed {
    x: f64,
    y: f64,
    w: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Vec3")]
struct Vec3Reordered {
    y: f64,
    x: f64,
    z: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v2.Vec3")]
struct Vec3OtherPackage {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Vec3")]
struct Vec3Atomic {
    x: f64,
    y: f64,
    z: AtomicU32,
    #[shm(padding)]
    __pad0: [u8; 4],
}

#[test]
fn any_change_of_names_order_or_types_changes_the_fingerprint() {
    let all = [
        Vec3::FINGERPRINT,
        Vec3Renamed::FINGERPRINT,
        Vec3Reordered::FINGERPRINT,
        Vec3OtherPackage::FINGERPRINT,
        Vec3Atomic::FINGERPRINT,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}
