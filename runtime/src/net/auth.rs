//! Keeping strangers out of the network side: a shared secret, HMAC-SHA256
//! tags on discovery announcements with replay protection, and tokens for
//! the websocket handshake (`docs/security.md` §2 has the threat model,
//! `docs/wire-format.md` the bytes).
//!
//! Everything here is pure (time is passed in), so it is tested without
//! sockets. The secret never comes from the command line: from a file
//! ([`NetSecret::from_file`]) or an environment variable
//! ([`NetSecret::from_env`]). Two keys are derived from it, one per use, so
//! a tag of one kind can never pass for the other:
//! `HMAC-SHA256(secret, "shmidl discovery v1")` and
//! `HMAC-SHA256(secret, "shmidl websocket v1")`.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Bytes an authenticated discovery packet carries after its topics: the
/// sending time (`u64`, milliseconds since the UNIX epoch) and the tag.
pub const TRAILER_LEN: usize = 8 + TAG_LEN;
/// Fewest bytes a secret may have.
pub const MIN_SECRET_LEN: usize = 16;
/// How far a tagged announcement or token's time may be from the
/// receiver's clock, unless configured otherwise.
pub const DEFAULT_WINDOW_MS: u64 = 10_000;
/// Senders (or nonces) a replay guard remembers at most; the oldest are
/// forgotten first.
pub const MAX_REMEMBERED: usize = 4096;

/// The shared secret of a deployment. Its bytes are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NetSecret {
    discovery: [u8; 32],
    websocket: [u8; 32],
}

impl fmt::Debug for NetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetSecret(..)")
    }
}

/// Why a secret could not be loaded.
#[derive(Debug, Error)]
pub enum SecretError {
    /// The key file could not be read.
    #[error("reading the secret from {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is not set (or not UTF-8).
    #[error("the environment variable {0} holding the secret is not set")]
    Env(String),
    /// Too short to be a secret.
    #[error("a secret needs at least {MIN_SECRET_LEN} bytes, this one has {0}")]
    TooShort(usize),
}

impl NetSecret {
    /// A secret from its bytes (at least [`MIN_SECRET_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Self {
            discovery: derive(bytes, b"shmidl discovery v1"),
            websocket: derive(bytes, b"shmidl websocket v1"),
        })
    }

    /// The secret in the file `path`: its bytes, without one trailing
    /// newline (`\n` or `\r\n`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| SecretError::File {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(trim_newline(&bytes))
    }

    /// The secret in the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        let value = std::env::var(var).map_err(|_| SecretError::Env(var.to_owned()))?;
        Self::from_bytes(trim_newline(value.as_bytes()))
    }

    /// The trailer of a discovery packet whose bytes (header, host name
    /// and topics, with the authenticated flag and the full length already
    /// set) are `packet`, sent at `unix_ms`.
    pub(crate) fn seal_packet(&self, packet: &[u8], unix_ms: u64) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[..8].copy_from_slice(&unix_ms.to_le_bytes());
        let mut mac = mac(&self.discovery);
        mac.update(packet);
        mac.update(&out[..8]);
        out[8..].copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Checks the trailer at the end of `datagram` (an authenticated
    /// discovery packet): returns its sending time if the tag is right.
    pub(crate) fn open_packet(&self, datagram: &[u8]) -> Result<u64, AuthFailure> {
        let Some(body_len) = datagram.len().checked_sub(TRAILER_LEN) else {
            return Err(AuthFailure::Missing);
        };
        let (body, trailer) = datagram.split_at(body_len);
        let mut mac = mac(&self.discovery);
        mac.update(body);
        mac.update(&trailer[..8]);
        mac.verify_slice(&trailer[8..])
            .map_err(|_| AuthFailure::BadTag)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&trailer[..8]);
        Ok(u64::from_le_bytes(ts))
    }

    /// The token a websocket client presents for `path` (the value of the
    /// `x-shmidl-auth` request header): `v1.<unix ms>.<nonce, 32 hex
    /// digits>.<tag, 64 hex digits>`, the tag over the time, the nonce and
    /// the path.
    pub fn websocket_token(&self, path: &str, nonce: [u8; 16], unix_ms: u64) -> String {
        let tag = self.token_tag(path, &nonce, unix_ms);
        format!("v1.{unix_ms}.{}.{}", hex(&nonce), hex(&tag))
    }

    fn token_tag(&self, path: &str, nonce: &[u8; 16], unix_ms: u64) -> [u8; TAG_LEN] {
        let mut mac = mac(&self.websocket);
        mac.update(&unix_ms.to_le_bytes());
        mac.update(nonce);
        mac.update(path.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks a websocket token for `path`: its tag, and that its time is
    /// within `window_ms` of `now_ms`. Returns its nonce and time (for the
    /// caller's [`ReplayGuard`]).
    pub fn check_token(
        &self,
        token: &str,
        path: &str,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<([u8; 16], u64), AuthFailure> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(ts), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthFailure::Malformed);
        };
        let ts: u64 = ts.parse().map_err(|_| AuthFailure::Malformed)?;
        let nonce: [u8; 16] = unhex(nonce).ok_or(AuthFailure::Malformed)?;
        let tag: [u8; TAG_LEN] = unhex(tag).ok_or(AuthFailure::Malformed)?;
        let mut mac = mac(&self.websocket);
        mac.update(&ts.to_le_bytes());
        mac.update(&nonce);
        mac.update(path.as_bytes());
        mac.verify_slice(&tag).map_err(|_| AuthFailure::BadTag)?;
        if now_ms.abs_diff(ts) > window_ms {
            return Err(AuthFailure::Stale);
        }
        Ok((nonce, ts))
    }
}

/// Why an announcement or a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthFailure {
    /// No tag where one is required.
    #[error("not authenticated")]
    Missing,
    /// The tag does not match: another key, or altered bytes.
    #[error("wrong authentication tag")]
    BadTag,
    /// The time it carries is too far from ours.
    #[error("outside the time window")]
    Stale,
    /// Seen before (or older than what this sender sent since).
    #[error("replayed")]
    Replayed,
    /// A token that is not `v1.<ms>.<nonce>.<tag>`.
    #[error("malformed token")]
    Malformed,
}

/// Refuses announcements replayed from a capture: per sender, the newest
/// sending time accepted; an announcement older than that, or outside the
/// time window, is refused. Copies of one round (sent by broadcast and
/// multicast, or parts of a split round) carry the same time and pass.
/// Senders that left are remembered for the window, so a goodbye cannot be
/// undone by replaying an earlier announcement. Memory is bounded by
/// [`MAX_REMEMBERED`].
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    newest: HashMap<u64, u64>,
}

impl ReplayGuard {
    /// A guard accepting times within `window_ms` of the receiver's clock.
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms,
            newest: HashMap::new(),
        }
    }

    /// Accepts or refuses an authenticated announcement of `sender` sent
    /// at `sent_ms`, received at `now_ms`.
    pub fn check(&mut self, sender: u64, sent_ms: u64, now_ms: u64) -> Result<(), AuthFailure> {
        if now_ms.abs_diff(sent_ms) > self.window_ms {
            return Err(AuthFailure::Stale);
        }
        match self.newest.get(&sender) {
            Some(&newest) if sent_ms < newest => return Err(AuthFailure::Replayed),
            _ => {}
        }
        if self.newest.len() >= MAX_REMEMBERED && !self.newest.contains_key(&sender) {
            self.forget_before(now_ms.saturating_sub(self.window_ms));
            if self.newest.len() >= MAX_REMEMBERED {
                // Still full of live senders: drop the stalest one. What it
                // could replay is older than its newest, so at worst inside
                // the window again.
                if let Some((&oldest, _)) = self.newest.iter().min_by_key(|(_, &t)| t) {
                    self.newest.remove(&oldest);
                }
            }
        }
        self.newest.insert(sender, sent_ms);
        Ok(())
    }

    /// Forgets senders whose newest time is before `cutoff_ms` (their
    /// captures are outside the window by now).
    pub fn forget_before(&mut self, cutoff_ms: u64) {
        self.newest.retain(|_, &mut t| t >= cutoff_ms);
    }
}

/// Refuses a websocket token presented twice: remembers the nonces of
/// accepted tokens for the time window.
#[derive(Debug)]
pub struct NonceGuard {
    window_ms: u64,
    seen: HashMap<[u8; 16], u64>,
}

impl NonceGuard {
    /// A guard for tokens valid within `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms,
            seen: HashMap::new(),
        }
    }

    /// Accepts a token's nonce once (its time already checked).
    pub fn check(&mut self, nonce: [u8; 16], ts_ms: u64, now_ms: u64) -> Result<(), AuthFailure> {
        if self.seen.len() >= MAX_REMEMBERED {
            let cutoff = now_ms.saturating_sub(self.window_ms);
            self.seen.retain(|_, &mut t| t >= cutoff);
            if self.seen.len() >= MAX_REMEMBERED {
                // A flood of fresh valid tokens needs the secret; refusing
                // more is the safe answer.
                return Err(AuthFailure::Replayed);
            }
        }
        if self.seen.insert(nonce, ts_ms).is_some() {
            return Err(AuthFailure::Replayed);
        }
        Ok(())
    }
}

/// Milliseconds since the UNIX epoch now (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 16 random bytes from the kernel, for a token's nonce.
pub fn random_nonce() -> [u8; 16] {
    let mut b = [0u8; 16];
    let hi = super::random_sender_id().to_le_bytes();
    let lo = super::random_sender_id().to_le_bytes();
    b[..8].copy_from_slice(&hi);
    b[8..].copy_from_slice(&lo);
    b
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn mac(key: &[u8; 32]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> NetSecret {
        NetSecret::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn a_sealed_packet_opens_with_the_same_secret_only() {
        let key = secret("correct horse battery staple");
        let body = b"SHMD\x01\x02 some announcement";
        let trailer = key.seal_packet(body, 1_700_000_000_123);
        let datagram = [&body[..], &trailer].concat();
        assert_eq!(key.open_packet(&datagram), Ok(1_700_000_000_123));
        let other = secret("another secret of enough bytes");
        assert_eq!(other.open_packet(&datagram), Err(AuthFailure::BadTag));
        // Any altered byte, time included, breaks the tag.
        for i in 0..datagram.len() {
            let mut bad = datagram.clone();
            bad[i] ^= 1;
            assert_eq!(key.open_packet(&bad), Err(AuthFailure::BadTag), "byte {i}");
        }
        assert_eq!(key.open_packet(&datagram[..20]), Err(AuthFailure::Missing));
    }

    #[test]
    fn the_two_keys_differ_so_a_tag_of_one_kind_is_not_the_other() {
        let key = secret("correct horse battery staple");
        assert_ne!(key.discovery, key.websocket);
    }

    #[test]
    fn secrets_load_from_files_and_the_environment_not_shorter_than_16_bytes() {
        let dir = std::env::temp_dir().join(format!("shmidl-secret-{}", std::process::id()));
        std::fs::write(&dir, "0123456789abcdef\n").unwrap();
        let from_file = NetSecret::from_file(&dir).unwrap();
        assert_eq!(from_file, secret("0123456789abcdef"));
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(
            NetSecret::from_file(&dir),
            Err(SecretError::File { .. })
        ));
        assert!(matches!(
            NetSecret::from_bytes(b"short"),
            Err(SecretError::TooShort(5))
        ));
        assert!(matches!(
            NetSecret::from_env("SHMIDL_TEST_SECRET_THAT_IS_NOT_SET"),
            Err(SecretError::Env(_))
        ));
        assert_eq!(format!("{from_file:?}"), "NetSecret(..)");
    }

    #[test]
    fn replayed_and_stale_announcements_are_refused() {
        let mut guard = ReplayGuard::new(10_000);
        let now = 1_000_000;
        assert_eq!(guard.check(7, now, now), Ok(()));
        // The same round again (broadcast and multicast copies) passes.
        assert_eq!(guard.check(7, now, now + 5), Ok(()));
        assert_eq!(guard.check(7, now + 1000, now + 1000), Ok(()));
        // A capture of the earlier round, replayed: refused.
        assert_eq!(guard.check(7, now, now + 2000), Err(AuthFailure::Replayed));
        // Too old or from the future: refused.
        assert_eq!(guard.check(8, now - 20_000, now), Err(AuthFailure::Stale));
        assert_eq!(guard.check(8, now + 20_000, now), Err(AuthFailure::Stale));
        // Another sender has its own history.
        assert_eq!(guard.check(8, now, now), Ok(()));
    }

    #[test]
    fn a_replay_guard_stays_bounded_under_a_flood_of_senders() {
        let mut guard = ReplayGuard::new(10_000);
        for s in 0..(3 * MAX_REMEMBERED as u64) {
            assert_eq!(guard.check(s, 1_000_000 + s, 1_000_000 + s), Ok(()));
        }
        assert!(guard.newest.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn websocket_tokens_check_tag_path_time_and_nonce() {
        let key = secret("correct horse battery staple");
        let now = 1_700_000_000_000;
        let nonce = [9u8; 16];
        let token = key.websocket_token("/robot/joints", nonce, now);
        assert!(token.starts_with("v1.1700000000000."), "{token}");
        assert_eq!(
            key.check_token(&token, "/robot/joints", now + 10, 10_000),
            Ok((nonce, now))
        );
        // Another path, key, time or a mangled token: refused.
        assert_eq!(
            key.check_token(&token, "/robot/other", now, 10_000),
            Err(AuthFailure::BadTag)
        );
        assert_eq!(
            secret("another secret of enough bytes").check_token(
                &token,
                "/robot/joints",
                now,
                10_000
            ),
            Err(AuthFailure::BadTag)
        );
        assert_eq!(
            key.check_token(&token, "/robot/joints", now + 60_000, 10_000),
            Err(AuthFailure::Stale)
        );
        for bad in [
            "",
            "v1",
            "v2.1.00.00",
            &token[..token.len() - 1],
            &format!("{token}.x"),
        ] {
            assert_eq!(
                key.check_token(bad, "/robot/joints", now, 10_000),
                Err(AuthFailure::Malformed),
                "{bad:?}"
            );
        }
        // A token is good once.
        let mut nonces = NonceGuard::new(10_000);
        assert_eq!(nonces.check(nonce, now, now), Ok(()));
        assert_eq!(nonces.check(nonce, now, now), Err(AuthFailure::Replayed));
        assert_ne!(random_nonce(), random_nonce());
    }
}
