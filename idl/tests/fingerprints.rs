//! Fingerprint stability. These numbers are part of the wire contract between processes
//! (and between the schema compiler and `#[derive(ShmMessage)]`): if a test here fails,
//! the algorithm changed, and every deployed producer and consumer would stop talking.
//! Never update a pinned value without a format version bump.

use shmidl_idl::{fingerprint::Fingerprinter, Primitive, Type};

fn schema(text: &str) -> shmidl_idl::Schema {
    shmidl_idl::parse_str("t.shmidl", text).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn hand_computed_vectors_match_the_documented_values() {
    // fp(u8) = FNV-1a(str("prim") str("u8"))
    assert_eq!(Primitive::U8.fingerprint(), 0x64e0_ae17_f1eb_e806);

    // fp([u32; 4]) = FNV-1a(str("array") u64(fp(u32)) u64(4))
    let sut = schema("struct S { a: [u32; 4] }");
    let array = Type::Array {
        element: Box::new(Type::Primitive(Primitive::U32)),
        len: 4,
    };
    let by_hand = Fingerprinter::new()
        .str("array")
        .u64(Primitive::U32.fingerprint())
        .u64(4)
        .finish();
    assert_eq!(sut.fingerprint_of(&array), by_hand);
    assert_eq!(by_hand, 0xe89a_8191_1de5_8196);

    // struct robot.v1.Vec3 { x: f64, y: f64, z: f64 }
    let sut = schema("package robot.v1;\nstruct Vec3 { x: f64, y: f64, z: f64 }\n");
    let f64_fp = Primitive::F64.fingerprint();
    let mut h = Fingerprinter::new();
    h.str("struct").str("robot.v1.Vec3").u64(3);
    for name in ["x", "y", "z"] {
        h.str(name).u64(f64_fp);
    }
    let vec3 = sut.type_by_name("robot.v1.Vec3").map(|t| t.fingerprint);
    assert_eq!(vec3, Some(h.finish()));
    assert_eq!(vec3, Some(0x02b4_5cb4_3104_7436));
}

#[test]
fn every_kind_of_type_matches_its_documented_byte_stream() {
    let sut = schema(
        "package p;\nenum E: i16 { A = -1, B = 7 }\nstruct S { s: string<5>, b: bytes<9>, q: sequence<E, 3> }\n",
    );
    let e = Fingerprinter::new()
        .str("enum")
        .str("p.E")
        .str("i16")
        .u64(2)
        .str("A")
        .u64(u64::MAX)
        .str("B")
        .u64(7)
        .finish();
    assert_eq!(sut.type_by_name("p.E").map(|t| t.fingerprint), Some(e));
    let string5 = Fingerprinter::new().str("string").u64(5).finish();
    let bytes9 = Fingerprinter::new().str("bytes").u64(9).finish();
    let seq = Fingerprinter::new().str("sequence").u64(e).u64(3).finish();
    let s = Fingerprinter::new()
        .str("struct")
        .str("p.S")
        .u64(3)
        .str("s")
        .u64(string5)
        .str("b")
        .u64(bytes9)
        .str("q")
        .u64(seq)
        .finish();
    assert_eq!(sut.type_by_name("p.S").map(|t| t.fingerprint), Some(s));
}

#[test]
fn fingerprints_ignore_comments_docs_whitespace_and_unrelated_declarations() {
    let plain = schema("package p;\nconst N: u8 = 4;\nstruct A { x: [u8; N] }\n");
    let noisy = schema(
        "/* header */ package   p ;\n/// docs\nstruct Unrelated { y: u64 }\n\n/// A\nstruct A {\n  /// x\n  x: [u8; 4], // four\n}\nconst N: u8 = 4;\n",
    );
    let a = |s: &shmidl_idl::Schema| s.type_by_name("p.A").map(|t| t.fingerprint);
    assert_eq!(a(&plain), a(&noisy));
}

#[test]
fn fingerprints_change_with_names_types_bounds_order_and_messages_equal_structs() {
    let fp = |text: &str| schema(text).type_by_name("p.A").map(|t| t.fingerprint);
    let base = fp("package p; struct A { x: u8, y: u16 }");
    assert_ne!(base, fp("package p; struct A { x: u8, z: u16 }"));
    assert_ne!(base, fp("package p; struct A { x: u8, y: i16 }"));
    assert_ne!(base, fp("package p; struct A { y: u16, x: u8 }"));
    assert_ne!(base, fp("package p; struct A { x: u8 }"));
    let other_package = schema("package q; struct A { x: u8, y: u16 }")
        .type_by_name("q.A")
        .map(|t| t.fingerprint);
    assert_ne!(base, other_package);
    assert_ne!(
        fp("package p; struct A { s: string<4> }"),
        fp("package p; struct A { s: string<5> }")
    );
    assert_ne!(
        fp("package p; struct A { s: string<4> }"),
        fp("package p; struct A { s: bytes<4> }")
    );
    assert_eq!(base, fp("package p; message A { x: u8, y: u16 }"));
}

#[test]
fn fingerprints_of_the_golden_schemas_are_pinned() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let pins: &[(&str, &str, u64)] = &[
        ("arrays_nested", "demo.arrays.Point", 0x432f_ffc5_bb86_6cf9),
        ("arrays_nested", "demo.arrays.Grid", 0x2c03_de79_4170_79e9),
        (
            "compact_trailing_commas",
            "demo.compact.A",
            0xd4dc_d8e9_005d_b744,
        ),
        (
            "compact_trailing_commas",
            "demo.compact.B",
            0x1813_4cd6_00d7_53d7,
        ),
        (
            "compact_trailing_commas",
            "demo.compact.C",
            0xfe84_17de_cfe1_2663,
        ),
        ("consts", "demo.consts.Bag", 0x1680_135c_2dbc_3b1e),
        (
            "docs_and_comments",
            "demo.docs.Documented",
            0x1ab2_bb8c_5aa1_03ff,
        ),
        ("docs_and_comments", "demo.docs.E", 0x498c_4517_c698_0ddd),
        ("docs_and_comments", "demo.docs.M", 0xa71a_563e_f844_8a56),
        ("enums", "demo.enums.Level", 0xb8e5_671f_4a58_22c4),
        ("enums", "demo.enums.Flags", 0x37c1_ad4f_091b_a309),
        ("enums", "demo.enums.Wide", 0x7ad5_7347_4a00_60ea),
        ("enums", "demo.enums.Neg", 0x1fd6_02ae_2170_87b5),
        ("enums", "demo.enums.UsesEnums", 0x696d_fc19_0e5c_8e64),
        ("imports", "app.Pose", 0xbc37_bc07_e287_6976),
        ("imports", "geo.Vec3", 0xb6d5_08b6_710b_c9dd),
        ("imports", "geo.Quat", 0xe8d4_1645_1f42_0708),
        ("imports", "geo.Stamped", 0x3f0f_9d31_f1d4_b2cb),
        ("imports", "common.time.Stamp", 0x19c8_4ee8_e18d_de66),
        (
            "keywords_as_fields",
            "demo.keywords.Keywords",
            0xd3bb_bae5_3e7f_095f,
        ),
        ("messages_nested", "demo.nested.Kind", 0x439d_f5ab_4a12_1d20),
        (
            "messages_nested",
            "demo.nested.Header",
            0x9d9d_c48a_6083_8e54,
        ),
        (
            "messages_nested",
            "demo.nested.Detection",
            0xf324_6f0b_ad0e_7fb4,
        ),
        (
            "messages_nested",
            "demo.nested.Detections",
            0x4084_e09c_82b5_b9a0,
        ),
        ("no_package", "Plain", 0x36ee_2629_61c2_85ab),
        ("no_package", "Wrapper", 0x289e_d42d_d173_5546),
        (
            "primitives",
            "demo.prims.AllPrimitives",
            0x5dab_5ed7_7487_2fbf,
        ),
        ("robot_example", "robot.v1.Mode", 0xc5ae_4fc3_7fbd_3973),
        ("robot_example", "robot.v1.Vec3", 0x02b4_5cb4_3104_7436),
        (
            "robot_example",
            "robot.v1.JointState",
            0x87d5_a86e_e31a_e2fd,
        ),
        (
            "same_package_two_files",
            "shared.pkg.Whole",
            0x5700_8309_c2c9_7564,
        ),
        (
            "same_package_two_files",
            "shared.pkg.Part",
            0xf9fc_2097_25bc_e55f,
        ),
        ("strings_bytes", "demo.text.Record", 0xc71b_04fd_7647_0d45),
        ("topics", "demo.topics.Tick", 0xd099_f5e0_e4c4_ad3b),
    ];
    for (case, name, expected) in pins {
        let dir = root.join(case);
        let includes = if dir.join("include").is_dir() {
            vec![dir.join("include")]
        } else {
            Vec::new()
        };
        let schema =
            shmidl_idl::load(dir.join("input.shmidl"), &includes).unwrap_or_else(|d| panic!("{d}"));
        let actual = schema.type_by_name(name).map(|t| t.fingerprint);
        assert_eq!(actual, Some(*expected), "{case}: {name}: {actual:#x?}");
    }
}
