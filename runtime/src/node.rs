//! [`Node`]: one process's presence in a shmidl domain, and the shortest
//! path from a topic name to a typed publisher or subscriber.

use std::{fmt, sync::Arc, time::Duration};

use thiserror::Error;

use crate::{
    name::{NameError, MAX_OBJECT_NAME_LEN},
    pool::{Pool, PoolOpenError},
    router::{PortsExhausted, Publisher, Router, RouterOpenError, SendMode, Subscriber},
    segment::{Segment, SegmentCreateError, SegmentOpenError},
    shm_safe::ShmSafe,
};

/// Longest topic name: the router's object name is the topic with `/`
/// replaced by `.`, and its pool's adds `.pool`.
pub const MAX_TOPIC_LEN: usize = MAX_OBJECT_NAME_LEN - ".pool".len();

/// A topic's pool and router settings; the schema's `topic` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    /// Pool slots (`pool:`); per chunk if the pool can grow.
    pub pool: u32,
    /// Chunks of `pool` slots the topic's pool may grow to, the first
    /// included (1: fixed size; see [`PoolBuilder::growable`](crate::PoolBuilder::growable)).
    pub pool_chunks: u32,
    /// Queue depth per publisher–subscriber pair (`depth:`).
    pub depth: u32,
    /// What `publish` does when a queue is full (`overflow:`).
    pub overflow: SendMode,
    /// Publisher slots (`max_publishers:`).
    pub max_publishers: u32,
    /// Subscriber slots (`max_subscribers:`).
    pub max_subscribers: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            pool: 64,
            pool_chunks: 1,
            depth: 8,
            overflow: SendMode::WaitIfFull(Duration::from_secs(1)),
            max_publishers: 8,
            max_subscribers: 8,
        }
    }
}

/// Joining a topic failed.
#[derive(Debug, Error)]
pub enum TopicError {
    /// The topic name is not `[A-Za-z0-9_]` segments separated by `/`, or is too long.
    #[error("invalid topic name {name:?}: {why}")]
    InvalidTopic {
        /// The name given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The topic's pool could not be opened or created.
    #[error(transparent)]
    Pool(#[from] PoolOpenError),
    /// The topic's router could not be opened or created.
    #[error(transparent)]
    Router(#[from] RouterOpenError),
    /// No free publisher or subscriber slot.
    #[error(transparent)]
    Ports(#[from] PortsExhausted),
}

/// One process's presence in a domain: a segment that every participant of
/// the domain opens by name, and the participant row it holds there (whose
/// liveness lock tells survivors when it died, so they can reclaim what it
/// held).
///
/// ```
/// use shmidl::{Node, TopicConfig};
/// # let domain = format!("doc-node-{}", std::process::id());
/// let node = Node::builder(&domain).size(4 << 20).open_or_create()?;
/// let mut subscriber = node.subscriber::<u64>("robot/ticks", TopicConfig::default())?;
/// let mut publisher = node.publisher::<u64>("robot/ticks", TopicConfig::default())?;
/// let mut sample = publisher.loan()?;
/// *sample = 7;
/// publisher.publish(sample)?;
/// assert_eq!(*subscriber.try_recv()?.unwrap(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    segment: Segment,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("domain", &self.inner.segment.name())
            .field("id", &format_args!("{:#018x}", self.id()))
            .finish()
    }
}

/// Builds a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    segment: crate::segment::SegmentBuilder,
}

impl NodeBuilder {
    /// Size of the domain's segment when this node creates it (default 16 MiB).
    #[must_use]
    pub fn size(mut self, bytes: u64) -> Self {
        self.segment = self.segment.size(bytes);
        self
    }

    /// Permission bits of the domain's segment (default `0o600`).
    #[must_use]
    pub fn permissions(mut self, mode: u32) -> Self {
        self.segment = self.segment.permissions(mode);
        self
    }

    /// Also accepts a domain segment owned by the user `uid` (by default only
    /// this user's own segments are opened; see
    /// [`SegmentBuilder::allow_owner`](crate::SegmentBuilder::allow_owner)).
    #[must_use]
    pub fn allow_owner(mut self, uid: u32) -> Self {
        self.segment = self.segment.allow_owner(uid);
        self
    }

    /// Also accepts a domain segment whose file belongs to the group `gid`
    /// (see [`SegmentBuilder::allow_group`](crate::SegmentBuilder::allow_group)).
    #[must_use]
    pub fn allow_group(mut self, gid: u32) -> Self {
        self.segment = self.segment.allow_group(gid);
        self
    }

    /// Joins the domain, creating its segment if no participant has. An
    /// existing segment is joined whatever its size.
    pub fn open_or_create(self) -> Result<Node, SegmentCreateError> {
        let deadline = std::time::Instant::now() + crate::segment::DEFAULT_TIMEOUT;
        let segment = loop {
            if std::time::Instant::now() >= deadline {
                // The segment keeps appearing and vanishing under us.
                return Err(SegmentOpenError::Closing {
                    name: self.segment.name().to_owned(),
                }
                .into());
            }
            match self.segment.clone().open() {
                Ok(s) => break s,
                Err(SegmentOpenError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            match self.segment.clone().create_exclusive() {
                Ok(s) => break s,
                // Another participant created it first: join theirs.
                Err(SegmentCreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        };
        Ok(Node {
            inner: Arc::new(NodeInner { segment }),
        })
    }
}

impl Node {
    /// Starts building a node of `domain` (the segment name).
    pub fn builder(domain: &str) -> NodeBuilder {
        NodeBuilder {
            segment: Segment::builder(domain).size(16 << 20),
        }
    }

    /// The domain's segment.
    pub fn segment(&self) -> &Segment {
        &self.inner.segment
    }

    /// This participant's random id (its row in the domain segment's
    /// participant table records it, as do the ports it creates).
    pub fn id(&self) -> u64 {
        self.inner.segment.participant_id()
    }

    /// Reclaims what dead participants of the domain held (see
    /// [`Segment::cleanup_dead`]). Returns how many were reclaimed.
    pub fn cleanup_dead(&self) -> std::io::Result<usize> {
        self.inner.segment.cleanup_dead()
    }

    /// The pool and router of `topic`, found or created with `config`.
    pub fn router<T: ShmSafe>(
        &self,
        topic: &str,
        config: TopicConfig,
    ) -> Result<Router<T>, TopicError> {
        let object = topic_object_name(topic)?;
        let pool = Pool::<T>::builder(&self.inner.segment, &format!("{object}.pool"))
            .capacity(config.pool)
            .growable(config.pool_chunks)
            .open_or_create()?;
        Ok(Router::builder(&pool, &object)
            .max_publishers(config.max_publishers)
            .max_subscribers(config.max_subscribers)
            .depth(config.depth)
            .default_mode(config.overflow)
            .open_or_create()?)
    }

    /// A publisher on `topic`.
    pub fn publisher<T: ShmSafe>(
        &self,
        topic: &str,
        config: TopicConfig,
    ) -> Result<Publisher<T>, TopicError> {
        Ok(self.router::<T>(topic, config)?.publisher()?)
    }

    /// A subscriber on `topic`.
    pub fn subscriber<T: ShmSafe>(
        &self,
        topic: &str,
        config: TopicConfig,
    ) -> Result<Subscriber<T>, TopicError> {
        Ok(self.router::<T>(topic, config)?.subscriber()?)
    }
}

/// `robot/joint_states` → `robot.joint_states`, after validation.
fn topic_object_name(topic: &str) -> Result<String, TopicError> {
    let bad = |why| TopicError::InvalidTopic {
        name: topic.to_owned(),
        why,
    };
    if topic.is_empty() {
        return Err(bad("it is empty"));
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(bad("it is longer than 59 bytes"));
    }
    for part in topic.split('/') {
        if part.is_empty() {
            return Err(bad("it has an empty segment"));
        }
        if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad("segments may hold only ASCII letters, digits and '_'"));
        }
    }
    let object = topic.replace('/', ".");
    crate::name::validate_object_name(&object).map_err(|e: NameError| match e {
        NameError::TooLong { .. } => bad("it is too long"),
        _ => bad("it does not make a valid object name"),
    })?;
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_map_to_object_names() {
        assert_eq!(
            topic_object_name("robot/joint_states").unwrap(),
            "robot.joint_states"
        );
        for bad in ["", "/a", "a/", "a//b", "a.b", "a b", &"x".repeat(60)] {
            assert!(topic_object_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
