//! The wire-decoder fuzz harness, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/wire_decode.rs`, nightly, by hand) and the proptest
//! that runs it in CI (`runtime/tests/wire_codec.rs`). Not public API.
//! (The topic registry decoder's harness is `topic/fuzzing.rs`, a layer
//! up.)

use crate::{Bool, Enum, FixedSizeBytes, FixedSizeString, FixedSizeVec, ShmMessage};

/// An enum with a hole and a negative value.
#[derive(crate::ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i16)]
#[shm(crate = "crate", name = "fuzz.Kind")]
pub enum Kind {
    /// -3
    Low = -3,
    /// 7
    High = 7,
}

/// One field of each kind, nested.
#[derive(crate::ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
#[shm(crate = "crate", name = "fuzz.Inner")]
pub struct Inner {
    /// A bool.
    pub flag: Bool,
    /// Explicit padding.
    #[shm(padding)]
    pub __pad0: [u8; 1],
    /// An enum.
    pub kind: Enum<Kind>,
    /// A string.
    pub name: FixedSizeString<5>,
    /// Explicit padding.
    #[shm(padding)]
    pub __pad1: [u8; 3],
}

/// A message with arrays and sequences of the above.
#[derive(crate::ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
#[shm(crate = "crate", name = "fuzz.Outer")]
pub struct Outer {
    /// A plain field.
    pub stamp: u64,
    /// A sequence of structs.
    pub items: FixedSizeVec<Inner, 3>,
    /// An array of bounded bytes.
    pub blobs: [FixedSizeBytes<2>; 2],
    /// A sequence of floats.
    pub values: FixedSizeVec<f32, 2>,
    /// Explicit padding.
    #[shm(padding)]
    pub __pad0: [u8; 4],
}

/// Decodes `data` (whole, and cut to each type's size) as every harness
/// type. Panics if a decoder panics or if a decoded value does not encode
/// back to exactly the input bytes (the wire form is canonical).
pub fn check_wire_input(data: &[u8]) {
    round_trip::<Inner>(data);
    round_trip::<Outer>(data);
    round_trip::<FixedSizeString<16>>(data);
    round_trip::<[Enum<Kind>; 4]>(data);
}

fn round_trip<T: crate::ShmSafe>(data: &[u8]) {
    let cut = &data[..data.len().min(std::mem::size_of::<T>())];
    for input in [data, cut] {
        if let Ok(value) = crate::wire::decode::<T>(input) {
            let again = crate::wire::encode_to_vec(&value).expect("no atomics");
            assert_eq!(again, input, "decoded bytes must re-encode identically");
        }
    }
}

/// `Outer`'s wire size, for generating inputs of the right length.
pub const OUTER_SIZE: usize = std::mem::size_of::<Outer>();

const _: () = {
    // Keep the harness types messages.
    fn _is_message<T: ShmMessage>() {}
};
