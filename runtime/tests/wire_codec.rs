//! The wire codec from outside: the example of docs/wire-format.md byte for
//! byte, round trips of generated-style messages (property tests), decoding
//! arbitrary bytes without panicking, one crafted buffer per validation rule,
//! and decoding straight into a pool slot.

use proptest::prelude::*;
use shmidl::{
    wire::{self, WireError},
    Bool, Enum, FixedSizeBytes, FixedSizeString, FixedSizeVec, LocalPool, ShmMessage, ShmSafe,
};

/// `enum Mode: u8 { Idle = 0, Run = 1 }` in `demo.v1`.
#[derive(ShmMessage, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
#[shm(name = "demo.v1.Mode")]
enum Mode {
    #[default]
    Idle = 0,
    Run = 1,
}

/// The example of docs/wire-format.md §1.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "demo.v1.Status", default)]
struct Status {
    stamp: u64,
    mode: Enum<Mode>,
    armed: Bool,
    name: FixedSizeString<6>,
    temps: FixedSizeVec<i16, 3>,
    #[shm(padding)]
    __pad0: [u8; 6],
}

#[test]
fn the_documented_example_encodes_to_the_documented_bytes() {
    let status = Status {
        stamp: 0x0102_0304_0506_0708,
        mode: Mode::Run.into(),
        armed: true.into(),
        name: "arm".try_into().unwrap(),
        temps: FixedSizeVec::try_from(&[-1i16, 300][..]).unwrap(),
        __pad0: [0; 6],
    };
    let expected: [u8; 40] = [
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // stamp
        0x01, // mode
        0x01, // armed
        0x03, 0x00, 0x00, 0x00, 0x61, 0x72, 0x6d, 0x00, 0x00, 0x00, // name
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // temps: len, reserved
        0xff, 0xff, 0x2c, 0x01, 0x00, 0x00, // temps: items
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // padding
    ];
    assert_eq!(status.encode_to_vec().unwrap(), expected);
    assert_eq!(Status::decode(&expected).unwrap(), status);
    assert_eq!(
        Status::LAYOUT.describe_def(),
        "struct demo.v1.Status { stamp: u64, mode: demo.v1.Mode, armed: bool, \
         name: string<6>, temps: sequence<i16, 3> }"
    );
}

/// Flips one byte of the documented example and expects one error.
fn broken(offset: usize, value: u8) -> Result<Status, WireError> {
    let mut bytes = Status::default().encode_to_vec().unwrap();
    bytes[offset] = value;
    Status::decode(&bytes)
}

#[test]
fn each_rule_rejects_a_crafted_buffer_with_its_own_error() {
    let good = Status::default().encode_to_vec().unwrap();
    assert!(Status::decode(&good).is_ok());
    assert!(matches!(
        Status::decode(&good[..39]),
        Err(WireError::Length {
            expected: 40,
            found: 39,
            ..
        })
    ));
    assert!(matches!(
        broken(8, 2),
        Err(WireError::Enum {
            field: "mode",
            offset: 8,
            value: 2,
            enum_name: "demo.v1.Mode"
        })
    ));
    assert!(matches!(
        broken(9, 2),
        Err(WireError::Bool {
            field: "armed",
            offset: 9,
            value: 2
        })
    ));
    assert!(matches!(
        broken(10, 7),
        Err(WireError::TooLong {
            field: "name",
            len: 7,
            capacity: 6,
            ..
        })
    ));
    let mut utf8 = good.clone();
    utf8[10] = 1;
    utf8[14] = 0xff;
    assert!(matches!(
        Status::decode(&utf8),
        Err(WireError::Utf8 {
            field: "name",
            offset: 14
        })
    ));
    assert!(matches!(
        broken(15, b'x'),
        Err(WireError::Tail {
            field: "name",
            offset: 15
        })
    ));
    assert!(matches!(
        broken(25, 1),
        Err(WireError::Reserved {
            field: "temps",
            offset: 25
        })
    ));
    assert!(matches!(
        broken(30, 1),
        Err(WireError::Tail {
            field: "temps",
            offset: 30
        })
    ));
    assert!(matches!(
        broken(39, 1),
        Err(WireError::Padding {
            field: "__pad0",
            offset: 39
        })
    ));
    // Every error renders as a sentence naming the field.
    let text = broken(8, 2).unwrap_err().to_string();
    assert_eq!(
        text,
        "`mode` at byte 8: 2 is not a value of enum `demo.v1.Mode`"
    );
}

#[test]
fn decoding_into_a_pool_slot_writes_the_slot_once() {
    let pool = LocalPool::<Status>::new(2).unwrap();
    let status = Status {
        stamp: 42,
        name: "slot".try_into().unwrap(),
        ..Default::default()
    };
    let bytes = status.encode_to_vec().unwrap();

    let slot = pool.try_loan_uninit().unwrap();
    let sample = Status::decode_into(&bytes, slot).unwrap();
    assert_eq!(*sample, status);

    // A bad buffer hands the slot back to the pool.
    let before = pool.free_count();
    let slot = pool.try_loan_uninit().unwrap();
    assert!(Status::decode_into(&bytes[1..], slot).is_err());
    assert_eq!(pool.free_count(), before);
}

/// A message with every kind of field, nested.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "demo.v1.Inner")]
struct Inner {
    id: u32,
    flag: Bool,
    #[shm(padding)]
    __pad0: [u8; 3],
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "demo.v1.Everything", default)]
struct Everything {
    a: u8,
    #[shm(padding)]
    __pad0: [u8; 1],
    b: i16,
    c: f32,
    d: [Enum<Mode>; 3],
    e: FixedSizeBytes<5>,
    f: FixedSizeVec<Inner, 4>,
    g: [FixedSizeString<7>; 2],
    #[shm(padding)]
    __pad1: [u8; 6],
    h: f64,
}

fn inner() -> impl Strategy<Value = Inner> {
    (any::<u32>(), any::<bool>()).prop_map(|(id, flag)| Inner {
        id,
        flag: flag.into(),
        __pad0: [0; 3],
    })
}

fn mode() -> impl Strategy<Value = Enum<Mode>> {
    prop_oneof![Just(Mode::Idle), Just(Mode::Run)].prop_map(Enum::from)
}

fn everything() -> impl Strategy<Value = Everything> {
    (
        any::<u8>(),
        any::<i16>(),
        any::<f32>(),
        prop::array::uniform3(mode()),
        prop::collection::vec(any::<u8>(), 0..=5),
        prop::collection::vec(inner(), 0..=4),
        prop::array::uniform2("[a-zé€]{0,2}"),
        any::<f64>(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h)| Everything {
            a,
            b,
            c,
            d,
            e: FixedSizeBytes::try_from(&e[..]).unwrap(),
            f: FixedSizeVec::try_from(&f[..]).unwrap(),
            g: g.map(|s| FixedSizeString::try_from(s.as_str()).unwrap()),
            h,
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn every_valid_message_round_trips(m in everything()) {
        let bytes = m.encode_to_vec().unwrap();
        prop_assert_eq!(bytes.len(), std::mem::size_of::<Everything>());
        let back = Everything::decode(&bytes).unwrap();
        // Compare bytes: NaN floats are not equal to themselves.
        prop_assert_eq!(back.encode_to_vec().unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_re_encodes_identically(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for input in [&bytes[..], &bytes[..bytes.len().min(std::mem::size_of::<Everything>())]] {
            if let Ok(m) = Everything::decode(input) {
                prop_assert_eq!(m.encode_to_vec().unwrap(), input.to_vec());
            }
            if let Ok(s) = Status::decode(input) {
                prop_assert_eq!(s.encode_to_vec().unwrap(), input.to_vec());
            }
        }
    }

    /// The cargo-fuzz harness (`fuzz/fuzz_targets/wire_decode.rs`), on
    /// stable: random bytes, most of them exactly one harness type's size.
    #[test]
    fn the_fuzz_harness_holds_on_random_input(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(any::<u8>(), shmidl::fuzzing::OUTER_SIZE),
            prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], shmidl::fuzzing::OUTER_SIZE),
        ],
    ) {
        shmidl::fuzzing::check_wire_input(&bytes);
    }

    #[test]
    fn a_single_corrupted_byte_is_refused_or_round_trips(
        m in everything(),
        at in 0usize..std::mem::size_of::<Everything>(),
        value in any::<u8>(),
    ) {
        let mut bytes = m.encode_to_vec().unwrap();
        bytes[at] = value;
        match Everything::decode(&bytes) {
            Ok(back) => prop_assert_eq!(back.encode_to_vec().unwrap(), bytes),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn a_plain_message_needs_no_validation() {
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    struct Plain {
        a: [u32; 1024],
    }
    assert!(Plain::LAYOUT.plain);
    assert!(!Status::LAYOUT.plain);
    let p = Plain { a: [7; 1024] };
    let bytes = p.encode_to_vec().unwrap();
    assert_eq!(wire::decode::<Plain>(&bytes).unwrap().a, p.a);
}
