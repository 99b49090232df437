//! [`Node`]: one process's presence in a shmidl domain, and the shortest
//! path from a topic name to a typed publisher or subscriber.
//!
//! A domain is a small registry segment (`/dev/shm/shmidl.<domain>`): one
//! entry per topic with its name, type name, fingerprint and configuration
//! (`topic/registry.rs`). Each topic's pool, router and pool chunks live in
//! a segment of the topic's own, created by its first user with a size
//! computed from its configuration, and removed when its last live user
//! leaves; so no topic can run out of room because another took it, and a
//! domain holds thousands of topics.

use std::{collections::HashMap, fmt, sync::Arc};

use thiserror::Error;

use crate::{
    dynamic::DynType,
    pool::{DynMessage, PoolOpenError, RouterPool, SlotView},
    recovery::{AuditError, AuditReport},
    router::{
        router_object_bytes, PortsExhausted, Publisher, Router, RouterConfig, RouterOpenError,
        Subscriber,
    },
    segment::{ObjectError, Segment, SegmentCreateError, SegmentOpenError, WeakSegment},
    topic::registry::{Registry, TopicRecord},
};

pub use crate::topic::TopicConfig;

/// Longest topic name in bytes (the schema language's limit too).
pub const MAX_TOPIC_LEN: usize = crate::topic::registry::MAX_TOPIC_NAME_LEN;

/// Topics a domain holds unless [`NodeBuilder::max_topics`] says otherwise.
pub const DEFAULT_MAX_TOPICS: u32 = 4096;

/// What a process asks of a topic when it opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRequest {
    /// Exactly this configuration: the topic is created with it, or, if it
    /// exists, must have it (`TopicError::ConfigMismatch` otherwise). What
    /// a program that defines the topic (generated code, a schema) passes.
    Exact(TopicConfig),
    /// Whatever the topic's creator chose, with these minimums: a process
    /// that only joins states what matters to it. If nobody created the
    /// topic yet, it is created with the defaults raised to the minimums.
    Join(Join),
}

impl From<TopicConfig> for TopicRequest {
    fn from(config: TopicConfig) -> Self {
        TopicRequest::Exact(config)
    }
}

impl From<Join> for TopicRequest {
    fn from(join: Join) -> Self {
        TopicRequest::Join(join)
    }
}

/// Joins a topic with its creator's settings, checking only what the joiner
/// states, each as "at least".
///
/// ```
/// # use shmidl::{Join, Node, TopicConfig, SendMode};
/// # let domain = format!("doc-join-{}", std::process::id());
/// let node = Node::builder(&domain).open_or_create()?;
/// let config = TopicConfig { depth: 32, overflow: SendMode::OverwriteOldest, ..Default::default() };
/// let mut publisher = node.publisher::<u64>("robot/ticks", config)?;
/// // The subscriber does not repeat the publisher's overflow mode or pool size.
/// let mut subscriber = node.subscriber::<u64>("robot/ticks", Join::new().min_depth(16))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Join {
    min_depth: u32,
    min_pool: u32,
    min_elements: u32,
}

impl Join {
    /// No requirement.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue depth must be at least `depth`.
    #[must_use]
    pub fn min_depth(mut self, depth: u32) -> Self {
        self.min_depth = depth;
        self
    }

    /// The pool must have at least `slots` slots (per chunk).
    #[must_use]
    pub fn min_pool(mut self, slots: u32) -> Self {
        self.min_pool = slots;
        self
    }

    /// A topic of `[T]`: samples must be able to hold at least `elements`
    /// elements. If the topic does not exist yet, it is created with
    /// exactly that many (a `[T]` topic cannot be created without it).
    #[must_use]
    pub fn min_elements(mut self, elements: u32) -> Self {
        self.min_elements = elements;
        self
    }
}

impl TopicRequest {
    /// The configuration a topic gets if this request creates it.
    fn config_for_create(&self) -> TopicConfig {
        match *self {
            TopicRequest::Exact(c) => c,
            TopicRequest::Join(j) => {
                let d = TopicConfig::default();
                TopicConfig {
                    depth: d.depth.max(j.min_depth),
                    pool: d.pool.max(j.min_pool),
                    elements: j.min_elements,
                    ..d
                }
            }
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
    /// The topic carries another type.
    #[error(
        "topic `{topic}` carries `{existing_type}` (fingerprint {existing_fingerprint:#018x}), \
         not `{requested_type}` (fingerprint {requested_fingerprint:#018x})"
    )]
    TypeMismatch {
        /// The topic.
        topic: String,
        /// The type it was created with (its canonical description).
        existing_type: String,
        /// That type's fingerprint.
        existing_fingerprint: u64,
        /// The type asked for.
        requested_type: String,
        /// Its fingerprint.
        requested_fingerprint: u64,
    },
    /// The topic exists with another configuration than the one required
    /// exactly.
    #[error(
        "topic `{topic}` exists with {existing}, not {requested}; {}",
        mismatch_hint(*.created_by_join)
    )]
    ConfigMismatch {
        /// The topic.
        topic: String,
        /// Its configuration.
        existing: Box<TopicConfig>,
        /// The one asked for.
        requested: Box<TopicConfig>,
        /// The existing configuration is what a process that joined with
        /// [`Join`] created the topic with (the defaults raised to its
        /// minimums), before any process defined it.
        created_by_join: bool,
    },
    /// The topic exists, and a [`Join`] minimum is not met.
    #[error("topic `{topic}` has {what} {existing}; this process requires at least {required}")]
    Unmet {
        /// The topic.
        topic: String,
        /// Which setting.
        what: &'static str,
        /// Its value.
        existing: u32,
        /// The minimum asked for.
        required: u32,
    },
    /// A topic of `[T]` needs its element count, a topic of `T` has none.
    #[error("topic `{topic}`: {why}")]
    Elements {
        /// The topic.
        topic: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Every entry of the domain's topic registry is taken by a topic in
    /// use (the entries of unused topics are reused).
    #[error(
        "domain `{domain}` has {capacity} topics in use; create the domain with a larger \
         `NodeBuilder::max_topics` (its registry is sized when the domain is created: every \
         process must leave it first)"
    )]
    RegistryFull {
        /// The domain.
        domain: String,
        /// Its registry's capacity.
        capacity: u32,
    },
    /// The domain's registry could not be read or written.
    #[error(transparent)]
    Registry(#[from] ObjectError),
    /// The topic's segment could not be created or opened.
    #[error("topic `{topic}`: {source}")]
    Segment {
        /// The topic.
        topic: String,
        /// Why.
        source: SegmentCreateError,
    },
    /// The topic's pool could not be opened or created (or its
    /// configuration cannot make one).
    #[error("topic `{topic}`: {source}")]
    Pool {
        /// The topic.
        topic: String,
        /// Why.
        source: Box<PoolOpenError>,
    },
    /// The topic's router could not be opened or created (or its
    /// configuration cannot make one).
    #[error("topic `{topic}`: {source}")]
    Router {
        /// The topic.
        topic: String,
        /// Why.
        source: Box<RouterOpenError>,
    },
    /// Other processes redefined the (unused) topic, or gave its registry
    /// entry to another topic, eight times while this one opened it; try
    /// again.
    #[error(
        "topic `{topic}` was redefined, or its registry entry reused, by other processes eight \
         times while this one opened it; try again"
    )]
    Contended {
        /// The topic.
        topic: String,
    },
    /// No free publisher or subscriber slot.
    #[error("topic `{topic}`: {source}")]
    Ports {
        /// The topic.
        topic: String,
        /// The router's error, naming the setting that raises the limit.
        source: PortsExhausted,
    },
}

fn mismatch_hint(created_by_join: bool) -> &'static str {
    if created_by_join {
        "a process that joins it (`shmidl::Join`) created it with the defaults before any \
         process defined it: start the defining process first, or give the joiners the same \
         configuration"
    } else {
        "join it with `shmidl::Join` to accept its settings, or use the same configuration"
    }
}

/// One process's presence in a domain: the domain's registry segment, the
/// participant row it holds there (whose liveness lock tells survivors when
/// it died), and the topic segments this process has open.
///
/// ```
/// use shmidl::{Node, TopicConfig};
/// # let domain = format!("doc-node-{}", std::process::id());
/// let node = Node::builder(&domain).open_or_create()?;
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
    registry: Registry,
    /// Topic segments open in this process, by segment name; weak, so a
    /// topic's segment is left when this process's last port of it drops.
    topics: std::sync::Mutex<HashMap<String, WeakSegment>>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("domain", &self.inner.segment.name())
            .field("id", &format_args!("{:#018x}", self.id()))
            .finish()
    }
}

/// Joining a domain failed.
#[derive(Debug, Error)]
pub enum NodeOpenError {
    /// The domain name is not valid (it names the domain's segment, a file
    /// in `/dev/shm`).
    #[error("invalid domain name `{domain}`: {source}")]
    InvalidDomain {
        /// The name given.
        domain: String,
        /// Why it is refused.
        source: crate::NameError,
    },
    /// The domain's segment could not be opened or created.
    #[error(transparent)]
    Segment(#[from] SegmentCreateError),
    /// The domain's topic registry could not be found, created or read.
    #[error("domain `{domain}`: topic registry: {source}")]
    Registry {
        /// The domain.
        domain: String,
        /// Why.
        source: ObjectError,
    },
}

impl From<SegmentOpenError> for NodeOpenError {
    fn from(e: SegmentOpenError) -> Self {
        NodeOpenError::Segment(e.into())
    }
}

/// Builds a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    segment: crate::segment::SegmentBuilder,
    max_topics: u32,
}

impl NodeBuilder {
    /// Size of the domain's registry segment when this node creates it
    /// (default: room for [`max_topics`](Self::max_topics) entries; a
    /// smaller segment holds as many topics as fit, 512 bytes each). Topic
    /// data does not live there: each topic has a segment of its own.
    #[must_use]
    pub fn size(mut self, bytes: u64) -> Self {
        self.segment = self.segment.size(bytes);
        self
    }

    /// Topics the domain can hold in use at once when this node creates it
    /// (default [`DEFAULT_MAX_TOPICS`]; 512 bytes of registry each). When
    /// all are taken, the entries of topics no process uses are reused.
    #[must_use]
    pub fn max_topics(mut self, topics: u32) -> Self {
        self.max_topics = topics.max(1);
        self.segment = self.segment.size(domain_size(self.max_topics));
        self
    }

    /// Permission bits of the domain's segments (default `0o600`); topic
    /// segments and pool chunks get the same.
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
    pub fn open_or_create(self) -> Result<Node, NodeOpenError> {
        // A node reclaims what dead participants held in every kind of
        // object, whether or not this process opened one yet.
        crate::recovery::install();
        let domain = self.segment.name();
        if let Err(source) = crate::SegmentName::new(domain) {
            return Err(NodeOpenError::InvalidDomain {
                domain: domain.to_owned(),
                source,
            });
        }
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
                Err(e) => return Err(e.into()),
            }
        };
        // A segment sized by hand holds as many topics as fit.
        let fit = (segment.free_bytes().saturating_sub(4096) / 512).min(u64::from(u32::MAX)) as u32;
        let capacity = self.max_topics.min(fit).max(1);
        let registry =
            Registry::open(&segment, capacity).map_err(|source| NodeOpenError::Registry {
                domain: segment.name().to_owned(),
                source,
            })?;
        Ok(Node {
            inner: Arc::new(NodeInner {
                segment,
                registry,
                topics: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// A domain segment with room for `topics` registry entries, the directory
/// and the participant table.
fn domain_size(topics: u32) -> u64 {
    crate::segment::layout::DATA_OFFSET + crate::topic::registry::registry_bytes(topics) + 64 * 1024
}

impl Node {
    /// Starts building a node of `domain` (the registry segment's name).
    pub fn builder(domain: &str) -> NodeBuilder {
        NodeBuilder {
            segment: Segment::builder(domain).size(domain_size(DEFAULT_MAX_TOPICS)),
            max_topics: DEFAULT_MAX_TOPICS,
        }
    }

    /// The domain's registry segment.
    pub fn segment(&self) -> &Segment {
        &self.inner.segment
    }

    /// This participant's random id (its row in the domain segment's
    /// participant table records it, as do the ports it creates).
    pub fn id(&self) -> u64 {
        self.inner.segment.participant_id()
    }

    /// Topic segments this process has open now.
    pub fn topic_segments(&self) -> Vec<Segment> {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics.retain(|_, weak| weak.upgrade().is_some());
        topics.values().filter_map(WeakSegment::upgrade).collect()
    }

    /// Reclaims what dead participants held in the domain segment and in
    /// every topic segment this process has open (see
    /// [`Segment::cleanup_dead`]). Returns how many were reclaimed in the
    /// domain segment (a dead process is one participant of each segment
    /// it had joined).
    pub fn cleanup_dead(&self) -> std::io::Result<usize> {
        for segment in self.topic_segments() {
            segment.cleanup_dead()?;
        }
        self.inner.segment.cleanup_dead()
    }

    /// Audits the domain segment and every topic segment this process has
    /// open ([`Segment::audit`]), summing the reports. Every one must be
    /// quiescent.
    pub fn audit(&self) -> Result<AuditReport, AuditError> {
        let mut total = self.inner.segment.audit()?;
        for segment in self.topic_segments() {
            let r = segment.audit()?;
            total.reclaimed_participants += r.reclaimed_participants;
            total.pools += r.pools;
            total.counts_fixed += r.counts_fixed;
            total.slots_freed += r.slots_freed;
        }
        Ok(total)
    }

    /// Every topic ever opened in the domain: name, type, fingerprint,
    /// configuration.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let domain = &self.inner.segment;
        self.inner
            .registry
            .records()
            .into_iter()
            .map(|(name, r)| TopicInfo::new(domain.name(), domain.id(), name, r))
            .collect()
    }

    /// The topics of the domain `domain` as its registry lists them, read
    /// without joining it (what `shmidl ls` shows); empty if the segment
    /// is not a domain.
    pub fn inspect_topics(domain: &str) -> Result<Vec<TopicInfo>, SegmentOpenError> {
        let report = Segment::inspect(domain)?;
        let Some((ty, bytes)) = Segment::read_object(domain, "topics")? else {
            return Ok(Vec::new());
        };
        if ty.kind != crate::segment::ObjectKind::TOPIC_REGISTRY {
            return Ok(Vec::new());
        }
        Ok(crate::topic::registry::decode_records(&bytes)
            .into_iter()
            .map(|(name, r)| TopicInfo::new(domain, report.id, name, r))
            .collect())
    }

    /// The pool and router of `topic`: found, or created with the
    /// request's configuration. See [`TopicRequest`] for what is checked
    /// when the topic exists.
    ///
    /// `V` is the payload: a message type `T`, or `[T]` for runtime-sized
    /// samples of up to [`TopicConfig::elements`] elements each (an image,
    /// a point cloud), loaned with
    /// [`Publisher::loan_slice`](crate::Publisher::loan_slice).
    ///
    /// ```
    /// use shmidl::{Join, Node, TopicConfig};
    /// # let domain = format!("doc-slice-{}", std::process::id());
    /// let node = Node::builder(&domain).open_or_create()?;
    /// let frames = TopicConfig { elements: 640 * 480 * 3, pool: 8, ..Default::default() };
    /// let mut camera = node.publisher::<[u8]>("camera/rgb", frames)?;
    /// let mut viewer = node.subscriber::<[u8]>("camera/rgb", Join::new())?;
    /// let mut frame = camera.loan_slice(320 * 240 * 3)?; // a smaller frame
    /// frame.fill(7);
    /// camera.publish(frame)?;
    /// let got = viewer.try_recv()?.unwrap();
    /// assert_eq!(got.len(), 320 * 240 * 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn router<V: ?Sized + SlotView>(
        &self,
        topic: &str,
        request: impl Into<TopicRequest>,
    ) -> Result<Router<V>, TopicError> {
        let payload = V::Pool::static_payload().ok_or_else(|| TopicError::Elements {
            topic: topic.to_owned(),
            why: "a topic of `DynMessage` is opened with its `DynType`: use `Node::dyn_router`",
        })?;
        self.router_of::<V>(topic, &payload, request.into())
    }

    /// The router of `topic` carrying messages of `ty`, a type known only
    /// at run time (from a schema: see [`DynType`]). It is the topic a
    /// program compiled with the type opens with [`router`](Self::router):
    /// the same registry record (checked as for a typed opener: same type
    /// name and fingerprint), pool and router, so the two exchange
    /// messages. Samples are [`DynMessage`](crate::DynMessage)s, the
    /// message's bytes.
    ///
    /// ```
    /// use shmidl::{DynType, Node, ShmMessage, TopicConfig};
    ///
    /// #[derive(ShmMessage, Debug, PartialEq)]
    /// #[repr(C)]
    /// struct Tick { n: u64 }
    ///
    /// # let domain = format!("doc-dyn-{}", std::process::id());
    /// let node = Node::builder(&domain).open_or_create()?;
    /// let mut typed = node.subscriber::<Tick>("ticks", TopicConfig::default())?;
    /// let mut tool = node.dyn_publisher("ticks", &DynType::of::<Tick>(), TopicConfig::default())?;
    /// let mut sample = tool.loan_zeroed()?;
    /// sample.copy_from_slice(&7u64.to_le_bytes());
    /// tool.publish(sample)?;
    /// assert_eq!(*typed.try_recv()?.unwrap(), Tick { n: 7 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dyn_router(
        &self,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
    ) -> Result<Router<DynMessage>, TopicError> {
        self.router_of::<DynMessage>(topic, ty, request.into())
    }

    /// A publisher on `topic` of `ty` (see [`dyn_router`](Self::dyn_router)).
    pub fn dyn_publisher(
        &self,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
    ) -> Result<Publisher<DynMessage>, TopicError> {
        self.dyn_router(topic, ty, request)?
            .publisher()
            .map_err(|source| TopicError::Ports {
                topic: topic.to_owned(),
                source,
            })
    }

    /// A subscriber on `topic` of `ty` (see [`dyn_router`](Self::dyn_router)).
    pub fn dyn_subscriber(
        &self,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
    ) -> Result<Subscriber<DynMessage>, TopicError> {
        self.dyn_router(topic, ty, request)?
            .subscriber()
            .map_err(|source| TopicError::Ports {
                topic: topic.to_owned(),
                source,
            })
    }

    fn router_of<V: ?Sized + SlotView>(
        &self,
        topic: &str,
        payload: &<V::Pool as RouterPool>::Payload,
        request: TopicRequest,
    ) -> Result<Router<V>, TopicError> {
        validate_topic(topic)?;
        let (type_name, fingerprint) = V::Pool::describe(payload);
        let config = request.config_for_create();
        let elements_error = |why| TopicError::Elements {
            topic: topic.to_owned(),
            why,
        };
        if !V::SLICE && config.elements != 0 {
            return Err(elements_error(
                "`TopicConfig::elements` is for topics of `[T]`; a topic of `T` needs 0",
            ));
        }
        let wanted = TopicRecord {
            index: 0,
            generation: 0,
            type_name,
            fingerprint,
            config,
            joined: matches!(request, TopicRequest::Join(_)),
        };
        let pool_error = |source| TopicError::Pool {
            topic: topic.to_owned(),
            source: Box::new(source),
        };
        let router_error = |source| TopicError::Router {
            topic: topic.to_owned(),
            source: Box::new(source),
        };
        let router_config = |c: &TopicConfig| RouterConfig {
            max_publishers: c.max_publishers,
            max_subscribers: c.max_subscribers,
            depth: c.depth,
            default_mode: c.overflow,
        };
        // Bytes of the topic's objects, and the check that `c` can be
        // created at all: made before a configuration goes into the
        // registry, so a bad one is refused without leaving an entry.
        let object_bytes = |c: &TopicConfig| -> Result<u64, TopicError> {
            if V::SLICE && c.elements == 0 {
                return Err(elements_error(
                    "a topic of `[T]` is created with the elements per sample: set \
                     `TopicConfig::elements` (or `Join::min_elements`)",
                ));
            }
            const _: () = assert!(crate::MAX_POOL_CHUNKS == 32, "the message below names 32");
            if c.pool_chunks == 0 || c.pool_chunks > crate::MAX_POOL_CHUNKS {
                return Err(pool_error(PoolOpenError::InvalidGeometry(
                    "`TopicConfig::pool_chunks` must be 1 ..= 32 (`shmidl::MAX_POOL_CHUNKS`)",
                )));
            }
            if u64::from(c.pool) * u64::from(c.pool_chunks) > u64::from(crate::MAX_POOL_CAPACITY) {
                return Err(pool_error(PoolOpenError::InvalidGeometry(
                    "`TopicConfig::pool` × `pool_chunks` must not exceed 2^30 slots",
                )));
            }
            let (pool_bytes, pool_align) =
                V::Pool::object_bytes(payload, c.pool, c.elements).map_err(pool_error)?;
            let router_bytes = router_object_bytes(&router_config(c)).map_err(router_error)?;
            let bytes = pool_bytes + pool_align + router_bytes + 64;
            use crate::segment::layout;
            const _: () = assert!(crate::segment::layout::MAX_SEGMENT_SIZE == 1 << 40);
            if layout::DATA_OFFSET.saturating_add(bytes) > layout::MAX_SEGMENT_SIZE {
                return Err(pool_error(PoolOpenError::InvalidGeometry(
                    "the topic's pool and router need more than a segment holds (1 TiB): \
                     lower `TopicConfig::pool` or the payload size",
                )));
            }
            Ok(bytes)
        };
        // Another process may redefine the topic, or free its entry for
        // another topic (if it was unused), between our reading its record
        // and our opening its segment: then we opened a segment of the old
        // generation that nobody else will use. Confirming the record once
        // the segment is open (and so visible to any redefiner, which then
        // refuses) catches that.
        let exact = matches!(request, TopicRequest::Exact(_));
        for _ in 0..8 {
            let record = self.resolve(topic, &wanted, &request, object_bytes)?;
            let c = record.config;
            let bytes = object_bytes(&c)?;
            let segment = self.topic_segment(topic, &record, bytes)?;
            if self.inner.registry.confirm(topic, &record, exact)? {
                let pool = V::Pool::open_in(
                    payload,
                    &segment,
                    "pool",
                    c.pool,
                    c.elements,
                    c.pool_chunks,
                    Some(topic),
                )
                .map_err(pool_error)?;
                return Router::builder(&pool, "router")
                    .max_publishers(c.max_publishers)
                    .max_subscribers(c.max_subscribers)
                    .depth(c.depth)
                    .default_mode(c.overflow)
                    .open_or_create()
                    .map_err(router_error);
            }
            tracing::debug!(
                topic,
                "topic redefined or freed while opening it; opening it again"
            );
        }
        Err(TopicError::Contended {
            topic: topic.to_owned(),
        })
    }

    /// A publisher on `topic` (see [`router`](Self::router)).
    pub fn publisher<V: ?Sized + SlotView>(
        &self,
        topic: &str,
        request: impl Into<TopicRequest>,
    ) -> Result<Publisher<V>, TopicError> {
        self.router::<V>(topic, request)?
            .publisher()
            .map_err(|source| TopicError::Ports {
                topic: topic.to_owned(),
                source,
            })
    }

    /// A subscriber on `topic` (see [`router`](Self::router)).
    pub fn subscriber<V: ?Sized + SlotView>(
        &self,
        topic: &str,
        request: impl Into<TopicRequest>,
    ) -> Result<Subscriber<V>, TopicError> {
        self.router::<V>(topic, request)?
            .subscriber()
            .map_err(|source| TopicError::Ports {
                topic: topic.to_owned(),
                source,
            })
    }

    /// The registry record `topic` is opened with: the existing one if it
    /// fits the request, a new one if the topic is new, or a redefinition
    /// if it does not fit but no segment of it exists (nobody uses it).
    /// `creatable` checks a configuration before it goes into the registry.
    fn resolve(
        &self,
        topic: &str,
        wanted: &TopicRecord,
        request: &TopicRequest,
        creatable: impl Fn(&TopicConfig) -> Result<u64, TopicError>,
    ) -> Result<TopicRecord, TopicError> {
        let registry = &self.inner.registry;
        let (domain, id) = (self.inner.segment.name(), self.inner.segment.id());
        // No segment of the topic exists: no process uses it.
        let unused = |r: &TopicRecord| !Segment::exists(&topic_segment_name(domain, id, r));
        // Two rounds: define or redefine, then check what is in force.
        for _ in 0..3 {
            let Some(current) = registry.lookup(topic)? else {
                creatable(&wanted.config)?;
                match registry.define(topic, wanted, |_| false, unused)? {
                    Some(_) => continue,
                    None => {
                        return Err(TopicError::RegistryFull {
                            domain: self.inner.segment.name().to_owned(),
                            capacity: registry.capacity(),
                        })
                    }
                }
            };
            let Err(conflict) = fits(topic, &current, wanted, request) else {
                return Ok(current);
            };
            if !unused(&current) {
                return Err(conflict);
            }
            creatable(&wanted.config)?;
            // Nobody uses the topic: it takes the new definition.
            registry.define(topic, wanted, |now| *now == current && unused(now), unused)?;
        }
        // Still no fit after redefining: report what is there now.
        let current = registry.lookup(topic)?.ok_or(TopicError::RegistryFull {
            domain: self.inner.segment.name().to_owned(),
            capacity: registry.capacity(),
        })?;
        fits(topic, &current, wanted, request).map(|()| current)
    }

    /// The segment of `topic` for `record`: already open in this process,
    /// or opened, or created with room for `payload` bytes of objects.
    fn topic_segment(
        &self,
        topic: &str,
        record: &TopicRecord,
        payload: u64,
    ) -> Result<Segment, TopicError> {
        let name = topic_segment_name(self.inner.segment.name(), self.inner.segment.id(), record);
        let mut open = self.inner.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(segment) = open.get(&name).and_then(WeakSegment::upgrade) {
            return Ok(segment);
        }
        let size = crate::segment::layout::DATA_OFFSET + payload;
        let segment = self
            .inner
            .segment
            .sibling_builder(&name)
            .size(size.max(crate::segment::MIN_SEGMENT_SIZE))
            .open_or_create()
            .map_err(|source| TopicError::Segment {
                topic: topic.to_owned(),
                source,
            })?;
        // Forget the segments of topics this process no longer uses, so that
        // the map stays as small as what is open.
        open.retain(|_, weak| weak.upgrade().is_some());
        open.insert(name, segment.downgrade());
        Ok(segment)
    }
}

/// A topic of a domain, as its registry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The payload type's canonical description (`robot.v1.JointState`,
    /// `[u8; 64]`).
    pub type_name: String,
    /// Its fingerprint.
    pub fingerprint: u64,
    /// The topic's configuration.
    pub config: TopicConfig,
    /// The name of the topic's segment (present while a process uses it).
    pub segment: String,
}

impl TopicInfo {
    fn new(domain: &str, domain_id: u64, name: String, r: TopicRecord) -> Self {
        TopicInfo {
            segment: topic_segment_name(domain, domain_id, &r),
            name,
            type_name: r.type_name,
            fingerprint: r.fingerprint,
            config: r.config,
        }
    }
}

/// Whether `current` serves `request` for the type of `wanted`.
fn fits(
    topic: &str,
    current: &TopicRecord,
    wanted: &TopicRecord,
    request: &TopicRequest,
) -> Result<(), TopicError> {
    if current.fingerprint != wanted.fingerprint {
        return Err(TopicError::TypeMismatch {
            topic: topic.to_owned(),
            existing_type: current.type_name.clone(),
            existing_fingerprint: current.fingerprint,
            requested_type: wanted.type_name.clone(),
            requested_fingerprint: wanted.fingerprint,
        });
    }
    match request {
        TopicRequest::Exact(c) if *c != current.config => Err(TopicError::ConfigMismatch {
            topic: topic.to_owned(),
            existing: Box::new(current.config),
            requested: Box::new(*c),
            created_by_join: current.joined,
        }),
        TopicRequest::Join(j) => {
            let unmet = |what, existing, required| TopicError::Unmet {
                topic: topic.to_owned(),
                what,
                existing,
                required,
            };
            if current.config.depth < j.min_depth {
                return Err(unmet("depth", current.config.depth, j.min_depth));
            }
            if current.config.pool < j.min_pool {
                return Err(unmet("pool", current.config.pool, j.min_pool));
            }
            if current.config.elements < j.min_elements {
                return Err(unmet("elements", current.config.elements, j.min_elements));
            }
            Ok(())
        }
        TopicRequest::Exact(_) => Ok(()),
    }
}

/// The segment name of a topic: `<domain>.t<entry>-<generation>-<domain id>`,
/// or, when that is too long, a hash of it. The domain's random id makes a
/// leftover topic segment of an earlier domain of the same name never match.
fn topic_segment_name(domain: &str, domain_id: u64, record: &TopicRecord) -> String {
    let full = format!(
        "{domain}.t{}-{}-{domain_id:016x}",
        record.index, record.generation
    );
    if full.len() <= crate::MAX_SEGMENT_NAME_LEN - 48 {
        full
    } else {
        let h = crate::fingerprint::Hasher::new()
            .str(domain)
            .u64(domain_id)
            .finish();
        format!("t-{h:016x}-{}-{}", record.index, record.generation)
    }
}

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes of `[A-Za-z0-9_]+`
/// segments separated by `/`.
fn validate_topic(topic: &str) -> Result<(), TopicError> {
    let bad = |why| TopicError::InvalidTopic {
        name: topic.to_owned(),
        why,
    };
    if topic.is_empty() {
        return Err(bad("it is empty"));
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(bad("it is longer than 128 bytes"));
    }
    for part in topic.split('/') {
        if part.is_empty() {
            return Err(bad("it has an empty segment"));
        }
        if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad("segments may hold only ASCII letters, digits and '_'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_checked() {
        assert!(validate_topic("robot/joint_states").is_ok());
        assert!(validate_topic(&"x".repeat(128)).is_ok());
        for bad in ["", "/a", "a/", "a//b", "a.b", "a b", &"x".repeat(129)] {
            assert!(validate_topic(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_bad_domain_name_is_refused_as_a_domain_name_before_anything_is_touched() {
        for bad in ["a/b", "", "../etc", &"d".repeat(300)] {
            let err = Node::builder(bad).open_or_create().unwrap_err();
            assert!(
                matches!(&err, NodeOpenError::InvalidDomain { domain, .. } if domain == bad),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("invalid domain name"), "{err}");
        }
    }
}
