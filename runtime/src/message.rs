//! [`ShmMessage`]: a schema type in Rust, with its name, layout and wire
//! codec.

use crate::{
    layout::TypeLayout,
    wire::{self, WireError},
    SampleMut, ShmSafe, UninitSample,
};

/// A message type: a `#[repr(C)]` struct whose layout and fingerprint match
/// a schema type, with a wire codec.
///
/// Derive it, don't implement it: `#[derive(ShmMessage)]` on a struct
/// implements this trait and [`ShmSafe`] (with the schema fingerprint and
/// [`LAYOUT`](ShmSafe::LAYOUT)), after checking at compile time that the
/// struct can live in shared memory. Code generated from a `.shmidl` schema
/// derives it too. On an enum, the derive implements
/// [`ShmEnum`](crate::ShmEnum) instead.
///
/// ```
/// use shmidl::{layout::TypeKind, ShmMessage, ShmSafe};
///
/// #[derive(ShmMessage, Debug, PartialEq)]
/// #[repr(C)]
/// #[shm(name = "robot.v1.Vec3")]
/// struct Vec3 { x: f64, y: f64, z: f64 }
///
/// assert_eq!(Vec3::TYPE_NAME, "robot.v1.Vec3");
/// assert_eq!(Vec3::FINGERPRINT, 0x02b4_5cb4_3104_7436); // as `shmidl check -v` prints
/// let TypeKind::Struct { fields, .. } = Vec3::LAYOUT.kind else { unreachable!() };
/// assert_eq!((fields[2].name, fields[2].offset), ("z", 16));
///
/// let v = Vec3 { x: 1.0, y: 2.0, z: 3.0 };
/// let mut buf = [0u8; 64];
/// let n = v.encode(&mut buf)?;
/// assert_eq!(Vec3::decode(&buf[..n])?, v);
/// # Ok::<(), shmidl::wire::WireError>(())
/// ```
pub trait ShmMessage: ShmSafe {
    /// The schema's qualified type name (`robot.v1.JointState`).
    const TYPE_NAME: &'static str;

    /// The static layout description (the same as [`ShmSafe::LAYOUT`]).
    fn layout() -> &'static TypeLayout {
        Self::LAYOUT
    }

    /// Bytes on the wire: `size_of::<Self>()`.
    fn wire_size() -> usize {
        std::mem::size_of::<Self>()
    }

    /// Writes the wire form into the start of `buf`; returns its length.
    /// See [`wire::encode`].
    fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        wire::encode(self, buf)
    }

    /// The wire form in a new `Vec` (an error only for a type with an
    /// atomic field, which has no wire form).
    fn encode_to_vec(&self) -> Result<Vec<u8>, WireError> {
        wire::encode_to_vec(self)
    }

    /// Checks that `bytes` is a valid wire form of `Self`.
    fn validate(bytes: &[u8]) -> Result<(), WireError> {
        wire::validate::<Self>(bytes)
    }

    /// Decodes and validates. See [`wire::decode`].
    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        wire::decode(bytes)
    }

    /// Decodes and validates over `self` (one copy, no temporary); on error
    /// `self` is unchanged. See [`wire::decode_in_place`].
    fn decode_in_place(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        wire::decode_in_place(bytes, self)
    }

    /// Decodes and validates straight into a pool slot. See
    /// [`wire::decode_into`].
    fn decode_into(bytes: &[u8], slot: UninitSample<Self>) -> Result<SampleMut<Self>, WireError> {
        wire::decode_into(bytes, slot)
    }
}
