//! Topics of a domain: the registry in the domain segment. The typed API is
//! [`Node`](crate::Node).

pub(crate) mod registry;
