//! The code generated from every valid golden schema (and every case of
//! `codegen/tests/fixtures`) compiles (this file
//! includes all of it, see `build.rs`), and each generated type has the size,
//! fingerprint, field offsets and canonical description that the schema
//! compiler gives the schema type.

use shmidl::layout::TypeKind;
use shmidl_idl::{Schema, TypeDefKind};

include!(concat!(env!("OUT_DIR"), "/golden.rs"));

fn load(case: &str) -> Schema {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = root.join("../codegen/tests/fixtures").join(case);
    let dir = if own.join("input.shmidl").is_file() {
        own
    } else {
        root.join("../idl/tests/fixtures/valid").join(case)
    };
    let include = dir.join("include");
    let includes = if include.is_dir() {
        vec![include]
    } else {
        vec![]
    };
    shmidl_idl::load_all(&[dir.join("input.shmidl")], &includes).expect("golden schemas are valid")
}

#[test]
fn every_generated_type_matches_its_schema_type() {
    let types = generated_types();
    assert!(types.len() > 30, "only {} types generated", types.len());
    let mut schemas = std::collections::HashMap::new();
    for (case, qualified, size, fingerprint, layout) in types {
        let schema = schemas.entry(case).or_insert_with(|| load(case));
        let def = schema
            .type_by_name(qualified)
            .unwrap_or_else(|| panic!("{case}: {qualified} not in the schema"));
        assert_eq!(size as u64, def.layout.size, "{case}: size of {qualified}");
        assert_eq!(layout.size as u64, def.layout.size, "{case}: {qualified}");
        assert_eq!(
            layout.align as u64, def.layout.align,
            "{case}: align of {qualified}"
        );
        assert_eq!(
            fingerprint, def.fingerprint,
            "{case}: fingerprint of {qualified}"
        );
        assert_eq!(
            layout.describe_def(),
            schema.describe_def(def.id),
            "{case}: canonical description of {qualified}"
        );
        if let (TypeDefKind::Struct(s), TypeKind::Struct { fields, .. }) = (&def.kind, layout.kind)
        {
            let data: Vec<_> = fields.iter().filter(|f| !f.padding).collect();
            assert_eq!(data.len(), s.fields.len(), "{case}: {qualified}");
            for (rust, idl) in data.iter().zip(&s.fields) {
                assert_eq!(rust.name, idl.name, "{case}: {qualified}");
                assert_eq!(
                    rust.offset as u64, idl.offset,
                    "{case}: offset of {qualified}.{}",
                    idl.name
                );
            }
        }
    }
}

#[test]
fn generated_types_default_to_valid_messages_and_round_trip_on_the_wire() {
    use shmidl::ShmMessage;
    let state = golden::robot_example::robot::v1::JointState::default();
    let bytes = state.encode_to_vec().unwrap();
    assert_eq!(
        golden::robot_example::robot::v1::JointState::decode(&bytes).unwrap(),
        state
    );
}
