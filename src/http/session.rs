//! Who is asking: a console session (a sealed HttpOnly, SameSite=Strict
//! cookie carrying the user, role, CSRF token and expiry), a script's bearer
//! token, or a trusted proxy's headers. Sessions are sealed with AES-256-GCM
//! under `STATE_DIR/http-session.key`, so a cookie cannot be forged or read,
//! and survives a restart.

use std::net::SocketAddr;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::http::{header, HeaderMap};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::users::Role;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dirsync_session";
/// The login form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "dirsync_login";

/// How someone proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
    Proxy,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Who {
    pub name: String,
    pub role: Role,
    /// The CSRF token forms must carry (sessions only).
    pub csrf: String,
    pub via: Via,
    /// A new session cookie to set (a proxy user's first request).
    pub set_cookie: Option<String>,
}

impl Who {
    pub fn operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// What a session cookie holds.
#[derive(Serialize, Deserialize)]
pub struct SessionData {
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "r")]
    pub role: Role,
    #[serde(rename = "c")]
    pub csrf: String,
    /// Unix ms.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// A random token for forms (128 bits, base64url).
pub fn random_token() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

const AAD: &[u8] = b"dirsync-http-session-v1";

/// Seal `data` for a cookie value.
pub fn seal<T: Serialize>(key: &Aes256Gcm, data: &T) -> Option<String> {
    let json = serde_json::to_vec(data).ok()?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ct = key
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &json, aad: AAD })
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
}

/// Open a cookie value sealed by [`seal`]; `None` when forged or damaged.
pub fn open<T: for<'de> Deserialize<'de>>(key: &Aes256Gcm, value: &str) -> Option<T> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let json = key
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: AAD })
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure under TLS.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// The open session in the request, if any and not expired.
pub fn session(key: &Aes256Gcm, headers: &HeaderMap, now_ms: i64) -> Option<SessionData> {
    let s: SessionData = open(key, cookie(headers, SESSION_COOKIE)?)?;
    (s.expires > now_ms).then_some(s)
}

/// The bearer token of an `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The peer is one of the trusted proxy's addresses.
pub fn from_proxy(peer: Option<SocketAddr>, from: &[std::net::IpAddr]) -> bool {
    peer.is_some_and(|p| from.iter().any(|ip| *ip == p.ip().to_canonical()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::KeyInit;

    #[test]
    fn sealed_sessions_open_only_with_their_key_and_untouched() {
        let key = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap(); // ok: test
        let other = Aes256Gcm::new_from_slice(&[8u8; 32]).unwrap(); // ok: test
        let s = SessionData {
            user: "alice".into(),
            role: Role::Operator,
            csrf: random_token(),
            expires: 2_000,
        };
        let v = seal(&key, &s).unwrap(); // ok: test
        assert!(!v.contains("alice"));
        let back: SessionData = open(&key, &v).unwrap(); // ok: test
        assert_eq!((back.user.as_str(), back.role), ("alice", Role::Operator));
        assert!(open::<SessionData>(&other, &v).is_none());
        let mut tampered = v.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(open::<SessionData>(&key, &String::from_utf8(tampered).unwrap()).is_none()); // ok: test
        let mut h = HeaderMap::new();
        let sealed = seal(&key, &s).unwrap(); // ok: test
        let value = format!("x=1; {SESSION_COOKIE}={sealed}");
        h.insert(header::COOKIE, value.parse().unwrap()); // ok: test
        assert!(session(&key, &h, 1_000).is_some());
        assert!(session(&key, &h, 3_000).is_none(), "expired");
    }
}
