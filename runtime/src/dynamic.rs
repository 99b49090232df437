//! Message types known only at run time: [`DynType`].
//!
//! A program compiled with a message type has its [`TypeLayout`] as a
//! constant (`T::LAYOUT`). A tool that reads a schema when it runs, such as
//! `shmidl bridge`, builds the same layout from the schema and wraps it in a
//! `DynType`; a topic opened with it ([`Node::dyn_publisher`],
//! [`Node::dyn_subscriber`]) is the same topic, with the same registry
//! record, pool and router, as the one a program compiled with the type
//! opens, so the two exchange messages. Its samples are
//! [`DynMessage`](crate::DynMessage)s: the message's bytes.
//!
//! [`Node::dyn_publisher`]: crate::Node::dyn_publisher
//! [`Node::dyn_subscriber`]: crate::Node::dyn_subscriber

use std::fmt;

use crate::{layout::TypeLayout, shm_safe::ShmSafe};

/// The largest message a [`DynType`] describes, as the schema language
/// allows (`MAX_TYPE_SIZE` of `shmidl-idl`): 1 GiB.
pub const MAX_DYN_SIZE: usize = 1 << 30;

/// A message type known at run time: its layout (size, alignment,
/// fingerprint, fields) and its canonical name.
///
/// ```
/// use shmidl::{DynType, ShmMessage, ShmSafe};
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Pose { x: f64, y: f64 }
///
/// let ty = DynType::of::<Pose>();
/// assert_eq!(ty.size(), 16);
/// assert_eq!(ty.fingerprint(), Pose::FINGERPRINT);
/// ```
#[derive(Clone)]
pub struct DynType {
    layout: &'static TypeLayout,
    name: String,
}

/// A layout that cannot describe a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DynTypeError {
    /// Size 0, or larger than [`MAX_DYN_SIZE`].
    #[error("`{name}` is {size} bytes; a message is 1 ..= {MAX_DYN_SIZE} bytes")]
    Size {
        /// The type's name.
        name: String,
        /// Its size.
        size: usize,
    },
    /// An alignment that is not a power of two up to 4096, or a size that
    /// is not a multiple of it.
    #[error("`{name}` has alignment {align} and size {size}: the alignment must be a power of two up to 4096 dividing the size")]
    Align {
        /// The type's name.
        name: String,
        /// Its alignment.
        align: usize,
        /// Its size.
        size: usize,
    },
}

impl DynType {
    /// The type `layout` describes. The layout lives for the whole program:
    /// a tool builds it once per type (leaking it is the usual way).
    pub fn new(layout: &'static TypeLayout) -> Result<Self, DynTypeError> {
        let name = layout.describe();
        if layout.size == 0 || layout.size > MAX_DYN_SIZE {
            return Err(DynTypeError::Size {
                name,
                size: layout.size,
            });
        }
        if !layout.align.is_power_of_two() || layout.align > 4096 || layout.size % layout.align != 0
        {
            return Err(DynTypeError::Align {
                name,
                align: layout.align,
                size: layout.size,
            });
        }
        Ok(Self { layout, name })
    }

    /// The run-time description of `T`, the same a schema gives for it.
    pub fn of<T: ShmSafe>() -> Self {
        Self {
            layout: T::LAYOUT,
            name: T::LAYOUT.describe(),
        }
    }

    /// The canonical name (`robot.v1.Pose`), as `shmidl check -v` prints
    /// it and a topic's registry record holds it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The structural fingerprint, the one `T::FINGERPRINT` has.
    pub fn fingerprint(&self) -> u64 {
        self.layout.fingerprint
    }

    /// Bytes of a message, in memory and on the wire.
    pub fn size(&self) -> usize {
        self.layout.size
    }

    /// Alignment of a message in memory.
    pub fn align(&self) -> usize {
        self.layout.align
    }

    /// The whole layout.
    pub fn layout(&self) -> &'static TypeLayout {
        self.layout
    }
}

impl fmt::Debug for DynType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynType")
            .field("name", &self.name)
            .field("size", &self.layout.size)
            .field("align", &self.layout.align)
            .field(
                "fingerprint",
                &format_args!("{:#018x}", self.layout.fingerprint),
            )
            .finish()
    }
}

impl PartialEq for DynType {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.layout.fingerprint == other.layout.fingerprint
            && self.layout.size == other.layout.size
            && self.layout.align == other.layout.align
    }
}

impl Eq for DynType {}
