//! Topics of a domain: their configuration and the registry in the domain
//! segment. The typed API is [`Node`](crate::Node).

mod config;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod registry;

pub use config::TopicConfig;
