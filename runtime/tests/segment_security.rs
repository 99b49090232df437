//! Local security of segment names (docs/security.md): `/dev/shm` is
//! writable by every local user, so a name may be squatted by a file of
//! another user, a symbolic link or a FIFO. Each is refused with its own
//! error, and allowing another owner or group explicitly works.

use std::{ffi::CString, os::unix::fs::symlink, path::PathBuf, time::Duration};

use shmidl::{Segment, SegmentOpenError};

fn unique(tag: &str) -> String {
    format!("t-sec-{tag}-{}", std::process::id())
}

fn path_of(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/shmidl.{name}"))
}

/// Removes a file at the end of a test, whatever happens.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_symbolic_link_is_refused_not_followed() {
    let target = Segment::builder(&unique("target"))
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let link = unique("link");
    symlink(path_of(target.name()), path_of(&link)).unwrap();
    let _cleanup = Remove(path_of(&link));
    match Segment::open(&link) {
        Err(SegmentOpenError::SymbolicLink { name }) => assert_eq!(name, link),
        other => panic!("expected SymbolicLink, got {other:?}"),
    }
    let err = Segment::builder(&link)
        .size(1 << 20)
        .open_or_create()
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // A dangling link cannot be used to create a file elsewhere either.
    let dangling = unique("dangling");
    let elsewhere = std::env::temp_dir().join(format!("shmidl-sec-{}", std::process::id()));
    symlink(&elsewhere, path_of(&dangling)).unwrap();
    let _cleanup2 = Remove(path_of(&dangling));
    assert!(Segment::builder(&dangling)
        .size(1 << 20)
        .open_or_create()
        .is_err());
    assert!(!elsewhere.exists(), "a file was created through the link");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let name = unique("fifo");
    let path = CString::new(path_of(&name).to_str().unwrap()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let _cleanup = Remove(path_of(&name));
    match Segment::builder(&name)
        .timeout(Duration::from_secs(1))
        .open()
    {
        Err(SegmentOpenError::NotAFile { .. }) => {}
        other => panic!("expected NotAFile, got {other:?}"),
    }
}

#[test]
fn a_segment_of_another_user_is_refused_unless_allowed() {
    let name = unique("foreign");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .permissions(0o660)
        .create_exclusive()
        .unwrap();
    // Hand the file to another user, as a squatter's file would be.
    let (uid, gid) = (54_321, 54_322);
    let path = CString::new(path_of(&name).to_str().unwrap()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated C string.
    if unsafe { libc::chown(path.as_ptr(), uid, gid) } != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EPERM),
            "chown failed unexpectedly: {err}"
        );
        eprintln!("skipped: changing a file's owner needs root (CI runs as root)");
        return;
    }
    match Segment::open(&name) {
        Err(SegmentOpenError::ForeignOwner {
            owner, group, ours, ..
        }) => {
            assert_eq!((owner, group), (uid, gid));
            // SAFETY: geteuid has no preconditions.
            assert_eq!(ours, unsafe { libc::geteuid() });
        }
        other => panic!("expected ForeignOwner, got {other:?}"),
    }
    let text = Segment::open(&name).unwrap_err().to_string();
    assert!(
        text.contains("uid 54321") && text.contains(".allow_owner(54321)"),
        "{text}"
    );
    // Explicitly allowed: by owner, or by group.
    let by_owner = Segment::builder(&name).allow_owner(uid).open().unwrap();
    let by_group = Segment::builder(&name).allow_group(gid).open().unwrap();
    drop((by_owner, by_group, seg));
}
