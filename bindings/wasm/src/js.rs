//! The boundary: every argument arrives as a plain JavaScript value and is
//! checked here (type, length, range) before the core sees it; results are
//! built here as plain objects, arrays and `Uint8Array`s.

use crate::error::Error;
use js_sys::{Array, Object, Reflect, Uint8Array};
use session_ratchet::account::SessionId;
use session_ratchet::client::{DeviceInfo, OutgoingEnvelope};
use session_ratchet::device::list::{ClientVersion, DeviceId, MAX_DESCRIPTION_LEN, Platform};
use session_ratchet::device::sas::Sas;
use session_ratchet::identity::Ed25519PublicKey;
use session_ratchet::ratchet::StorageKey;
use wasm_bindgen::{JsCast, JsValue};
use zeroize::Zeroizing;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Whether `v` is `undefined` or `null`.
pub(crate) fn is_absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

/// A `Uint8Array` (a Node `Buffer` is one), copied into Rust.
pub(crate) fn bytes(v: &JsValue, what: &str) -> Result<Vec<u8>, Error> {
    match v.dyn_ref::<Uint8Array>() {
        Some(a) => Ok(a.to_vec()),
        None => Err(Error::wrong_type(what, "a Uint8Array")),
    }
}

/// A `Uint8Array`, or `undefined`/`null` for none.
pub(crate) fn opt_bytes(v: &JsValue, what: &str) -> Result<Option<Vec<u8>>, Error> {
    if is_absent(v) {
        Ok(None)
    } else {
        bytes(v, what).map(Some)
    }
}

/// A `Uint8Array` of exactly `N` bytes.
pub(crate) fn array<const N: usize>(v: &JsValue, what: &str) -> Result<[u8; N], Error> {
    let a = v
        .dyn_ref::<Uint8Array>()
        .ok_or_else(|| Error::wrong_type(what, &format!("a Uint8Array of {N} bytes")))?;
    let len = a.length() as usize;
    if len != N {
        return Err(Error::invalid(
            what,
            &format!("must be {N} bytes long, got {len}"),
        ));
    }
    let mut out = [0u8; N];
    a.copy_to(&mut out);
    Ok(out)
}

/// A secret of `N` bytes: the copy in Rust is wiped when dropped (the
/// caller's `Uint8Array` is the caller's to wipe).
pub(crate) fn secret<const N: usize>(v: &JsValue, what: &str) -> Result<Zeroizing<[u8; N]>, Error> {
    array::<N>(v, what).map(Zeroizing::new)
}

/// The 32-byte storage key.
pub(crate) fn storage_key(v: &JsValue) -> Result<StorageKey, Error> {
    storage_key_named(v, "storageKey")
}

/// A 32-byte key argument named `what` (the storage key, a blob's key).
pub(crate) fn storage_key_named(v: &JsValue, what: &str) -> Result<StorageKey, Error> {
    let key = secret::<32>(v, what)?;
    Ok(StorageKey::from_bytes(*key))
}

/// An array of `Uint8Array`s (`undefined`/`null`: none).
pub(crate) fn byte_list(v: &JsValue, what: &str) -> Result<Vec<Vec<u8>>, Error> {
    if is_absent(v) {
        return Ok(Vec::new());
    }
    let a = v
        .dyn_ref::<Array>()
        .ok_or_else(|| Error::wrong_type(what, "an array of Uint8Array"))?;
    a.iter()
        .map(|item| bytes(&item, &format!("{what}[]")))
        .collect()
}

/// A string.
pub(crate) fn string(v: &JsValue, what: &str) -> Result<String, Error> {
    v.as_string()
        .ok_or_else(|| Error::wrong_type(what, "a string"))
}

/// A boolean.
pub(crate) fn boolean(v: &JsValue, what: &str) -> Result<bool, Error> {
    v.as_bool()
        .ok_or_else(|| Error::wrong_type(what, "a boolean"))
}

/// A time or generation: a non-negative integer `number` (exact, so at most
/// 2^53 - 1) or a `bigint` that fits 64 bits.
pub(crate) fn u64_arg(v: &JsValue, what: &str) -> Result<u64, Error> {
    if let Some(n) = v.as_f64() {
        if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER) {
            return Err(Error::invalid(
                what,
                "must be a non-negative integer no larger than Number.MAX_SAFE_INTEGER (or a bigint)",
            ));
        }
        // Exact: an integer in [0, 2^53).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok(n as u64);
    }
    if v.is_bigint() {
        return u64::try_from(v.clone())
            .map_err(|_| Error::invalid(what, "must be a bigint in [0, 2^64)"));
    }
    Err(Error::wrong_type(what, "a number or a bigint"))
}

/// A generation for JavaScript: a `number` (exact below 2^53, which a
/// counter of commits does not reach).
#[allow(clippy::cast_precision_loss)]
pub(crate) fn generation_out(g: u64) -> f64 {
    g as f64
}

/// An account key: 32 bytes that decode as an Ed25519 public key.
pub(crate) fn account(v: &JsValue, what: &str) -> Result<([u8; 32], Ed25519PublicKey), Error> {
    let bytes = array::<32>(v, what)?;
    let key = Ed25519PublicKey::from_bytes(&bytes)
        .map_err(|_| Error::invalid(what, "is not an Ed25519 public key (an account key)"))?;
    Ok((bytes, key))
}

/// A device id (32 bytes).
pub(crate) fn device_id(v: &JsValue, what: &str) -> Result<DeviceId, Error> {
    array::<32>(v, what).map(DeviceId::from_bytes)
}

/// A Session ID: its 66 hex digits, or its 33 bytes.
pub(crate) fn session_id(v: &JsValue) -> Result<SessionId, Error> {
    if let Some(s) = v.as_string() {
        return Ok(SessionId::from_hex(&s)?);
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(SessionId::from_bytes(&a.to_vec())?);
    }
    Err(Error::wrong_type(
        "sessionId",
        "a string of 66 hex digits or a Uint8Array of 33 bytes",
    ))
}

/// A device description: a string (the description alone) or
/// `{ description, platform?, clientVersion? }`.
pub(crate) fn device_info(v: &JsValue) -> Result<DeviceInfo, Error> {
    if let Some(s) = v.as_string() {
        return description(s).map(|d| DeviceInfo::new(&d));
    }
    if !v.is_object() || v.is_function() || Array::is_array(v) {
        return Err(Error::wrong_type(
            "info",
            "a string or { description, platform?, clientVersion? }",
        ));
    }
    let mut info = DeviceInfo::new(&description(string(
        &field(v, "description")?,
        "info.description",
    )?)?);
    let platform = field(v, "platform")?;
    if !is_absent(&platform) {
        info.platform = self::platform(&platform)?;
    }
    let version = field(v, "clientVersion")?;
    if !is_absent(&version) {
        let parts = version
            .dyn_ref::<Array>()
            .filter(|a| a.length() == 3)
            .ok_or_else(|| Error::wrong_type("info.clientVersion", "[major, minor, patch]"))?;
        let mut v3 = [0u16; 3];
        for (slot, part) in v3.iter_mut().zip(parts.iter()) {
            *slot = part
                .as_f64()
                .filter(|n| n.fract() == 0.0 && (0.0..=65535.0).contains(n))
                // In range and integral: exact.
                .map(|n| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let x = n as u16;
                    x
                })
                .ok_or_else(|| {
                    Error::invalid("info.clientVersion", "must hold integers from 0 to 65535")
                })?;
        }
        let [major, minor, patch] = v3;
        info.client_version = ClientVersion {
            major,
            minor,
            patch,
        };
    }
    Ok(info)
}

fn description(s: String) -> Result<String, Error> {
    if s.len() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(
            "info.description",
            &format!("must be at most {MAX_DESCRIPTION_LEN} bytes of UTF-8"),
        ));
    }
    Ok(s)
}

fn platform(v: &JsValue) -> Result<Platform, Error> {
    if let Some(s) = v.as_string() {
        return match s.as_str() {
            "unspecified" => Ok(Platform::Unspecified),
            "android" => Ok(Platform::Android),
            "ios" => Ok(Platform::Ios),
            "desktop" => Ok(Platform::Desktop),
            "web" => Ok(Platform::Web),
            _ => Err(Error::invalid(
                "info.platform",
                "must be one of unspecified, android, ios, desktop, web (or a byte)",
            )),
        };
    }
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=255.0).contains(&n) => {
            // In range and integral: exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Platform::from_byte(n as u8))
        }
        Some(_) => Err(Error::invalid("info.platform", "must be a byte (0 to 255)")),
        None => Err(Error::wrong_type(
            "info.platform",
            "a platform name or a byte",
        )),
    }
}

/// A property of an object (reading it may run a getter, which may throw).
pub(crate) fn field(v: &JsValue, name: &str) -> Result<JsValue, Error> {
    Reflect::get(v, &JsValue::from_str(name))
        .map_err(|_| Error::invalid(name, "could not be read (its getter threw)"))
}

// ---- results ----------------------------------------------------------------

/// A new `Uint8Array` holding `b`.
pub(crate) fn u8a(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

/// An array of `Uint8Array`s.
pub(crate) fn u8a_list<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> JsValue {
    items.into_iter().map(u8a).collect::<Array>().into()
}

/// A plain object with the given properties.
pub(crate) fn object(props: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in props {
        // Defining a property of a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// `{ bytes, mailboxes }[]`.
pub(crate) fn envelopes(out: &[OutgoingEnvelope]) -> JsValue {
    out.iter()
        .map(|e| {
            object(&[
                ("bytes", u8a(&e.bytes)),
                (
                    "mailboxes",
                    e.mailboxes
                        .iter()
                        .map(|m| u8a(&m.to_bytes()))
                        .collect::<Array>()
                        .into(),
                ),
            ])
        })
        .collect::<Array>()
        .into()
}

/// `{ emoji, name }[]` of the SAS's first `extended ? 21 : 7` emoji.
pub(crate) fn sas(sas: &Sas, extended: bool) -> Result<JsValue, Error> {
    let corrupt = |e: session_ratchet::device::sas::SasError| {
        Error::new(crate::error::INTERNAL, e.to_string())
    };
    let list: Vec<(&str, &str)> = if extended {
        sas.extended().map_err(corrupt)?.to_vec()
    } else {
        sas.short().map_err(corrupt)?.to_vec()
    };
    Ok(list
        .into_iter()
        .map(|(emoji, name)| {
            object(&[
                ("emoji", JsValue::from_str(emoji)),
                ("name", JsValue::from_str(name)),
            ])
        })
        .collect::<Array>()
        .into())
}
