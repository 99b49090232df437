//! `shmidl::include_schema!` over files that `build.rs` wrote to `$OUT_DIR`
//! with `shmidl_codegen::compile`, as a user's crate does: two packages
//! under one prefix share `pub mod robot`, and the generator's relative
//! paths between them (`super::common::Pose`, and from the topics module
//! `super::super::super::common::Pose`) resolve in that tree.

shmidl::include_schema!("robot.v1", "robot.common");

use robot::{common, v1};
use shmidl::{ShmMessage, ShmSafe};

#[test]
fn sibling_packages_share_their_prefix_module_and_reference_each_other() {
    let mut sut = v1::Status::default();
    sut.pose.mode.set(common::Mode::Run);
    sut.health.self_ = 7;
    sut.health.r#type = 9;
    assert_eq!(sut.pose.mode.get(), Ok(common::Mode::Run));
    assert_eq!(<v1::Status as ShmMessage>::TYPE_NAME, "robot.v1.Status");
    let bytes = sut.encode_to_vec().unwrap();
    assert_eq!(v1::Status::decode(&bytes).unwrap(), sut);
    assert_eq!(
        <v1::Status as ShmSafe>::FINGERPRINT,
        <v1::Status as ShmSafe>::LAYOUT.fingerprint
    );
}

#[test]
fn topic_modules_name_their_message_and_the_schema_options() {
    fn same_type<A: 'static, B: 'static>() -> bool {
        std::any::TypeId::of::<A>() == std::any::TypeId::of::<B>()
    }
    assert!(same_type::<
        v1::topics::robot_common_pose::Message,
        common::Pose,
    >());
    assert!(same_type::<v1::topics::robot_status::Message, v1::Status>());
    assert_eq!(v1::topics::robot_status::NAME, "robot/Status");
    let config = v1::topics::robot_status::config();
    assert_eq!((config.pool, config.depth), (8, 2));
    assert!(matches!(
        v1::topics::robot_common_pose::config().overflow,
        shmidl::SendMode::SoftFailIfFull
    ));
    assert_eq!(common::topics::robot_pose::NAME, "robot/pose");
}

#[test]
fn an_enum_defaults_to_what_a_default_message_holds() {
    // `Mode` declares `Off = -1` first; a zeroed message holds `Idle = 0`,
    // and so does `Mode::default()`.
    assert_eq!(common::Mode::default(), common::Mode::Idle);
    assert_eq!(
        common::Pose::default().mode.get(),
        Ok(common::Mode::default())
    );
    assert_eq!(
        v1::Status::default().health.mode.get(),
        Ok(common::Mode::default())
    );
}
