//! Linking a new device (spec §8.5): `LinkingDevice` on the new device,
//! `LinkApproval` on the existing one (made by `Device.respondToLink`).

use crate::device::Device;
use crate::error::{CONSUMED, Error};
use crate::js::{self, object, u8a, u8a_list};
use crate::os_rng;
use crate::store::store_arg;
use session_ratchet::client;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// The hidden method by which `Device.approveLink` takes the pending link
/// out of a [`LinkApproval`] argument.
const TAKE: &str = "__srTake";

/// A new device joining an account, before it has a store: send
/// `request()` to an existing device (a QR code), show the SAS that
/// `receiveResponse` returns, and `finish` with the payload once the user
/// has confirmed on the existing device.
#[wasm_bindgen]
#[derive(Debug)]
pub struct LinkingDevice {
    inner: client::LinkingDevice,
}

#[wasm_bindgen]
impl LinkingDevice {
    /// Starts a link: a fresh identity, and the request to hand over.
    pub fn start(
        #[wasm_bindgen(unchecked_param_type = "DeviceInfo | string")] info: JsValue,
    ) -> Result<LinkingDevice, Error> {
        let info = js::device_info(&info)?;
        Ok(Self {
            inner: client::LinkingDevice::start(os_rng(), &info),
        })
    }

    /// The link request to hand to an existing device.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array")]
    pub fn request(&self) -> JsValue {
        u8a(self.inner.request())
    }

    /// Takes the existing device's response and returns the 7 emoji to
    /// show. A forged response throws or gives a different SAS; the link
    /// stays open for the genuine one.
    #[wasm_bindgen(js_name = receiveResponse, unchecked_return_type = "SasEmoji[]")]
    pub fn receive_response(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] response: JsValue,
    ) -> Result<JsValue, Error> {
        let response = js::bytes(&response, "response")?;
        let sas = self.inner.receive_response(&response)?;
        js::sas(sas, false)
    }

    /// Opens the approving device's payload and becomes a device of the
    /// account, committed to `store` (which must be empty). On an error
    /// nothing is written and another payload may be tried.
    #[wasm_bindgen(unchecked_return_type = "Linked")]
    pub fn finish(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] payload: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let payload = zeroize::Zeroizing::new(js::bytes(&payload, "payload")?);
        let now = js::u64_arg(&now, "now")?;
        let linked = self.inner.finish(store, &key, &payload, now)?;
        let contacts: Vec<[u8; 32]> = linked.contacts.iter().map(|k| k.to_bytes()).collect();
        Ok(object(&[
            ("device", Device::wrap(linked.device).into()),
            ("contacts", u8a_list(contacts.iter().map(|k| k.as_slice()))),
        ]))
    }
}

/// The existing device's side of a link in progress: show `sas` next to
/// `description` and ask the user whether the new device shows the same
/// emoji; then `Device.approveLink` (which uses it up) or drop it.
#[wasm_bindgen]
#[derive(Debug)]
pub struct LinkApproval {
    inner: Option<client::LinkApproval>,
}

/// A pending link handed from its [`LinkApproval`] to `approveLink`
/// (consumed on the way).
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct LinkApprovalTake {
    inner: Option<client::LinkApproval>,
}

impl LinkApproval {
    pub(crate) fn wrap(inner: client::LinkApproval) -> Self {
        Self { inner: Some(inner) }
    }

    fn pending(&self) -> Result<&client::LinkApproval, Error> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::new(CONSUMED, "this link approval was already used"))
    }
}

#[wasm_bindgen]
impl LinkApproval {
    /// The 7 emoji to show (the new device shows the same 7).
    #[wasm_bindgen(getter, unchecked_return_type = "SasEmoji[]")]
    pub fn sas(&self) -> Result<JsValue, Error> {
        js::sas(self.pending()?.sas(), false)
    }

    /// All 21 emoji (an extended view, for a closer comparison).
    #[wasm_bindgen(getter, js_name = sasExtended, unchecked_return_type = "SasEmoji[]")]
    pub fn sas_extended(&self) -> Result<JsValue, Error> {
        js::sas(self.pending()?.sas(), true)
    }

    /// The requesting device's description, to show next to the SAS.
    #[wasm_bindgen(getter)]
    pub fn description(&self) -> Result<String, Error> {
        Ok(String::from(self.pending()?.description()))
    }

    /// Whether `approveLink` already used this approval.
    #[wasm_bindgen(getter)]
    pub fn used(&self) -> bool {
        self.inner.is_none()
    }

    /// Moves the pending link out (to `approveLink`).
    #[wasm_bindgen(js_name = __srTake, skip_typescript)]
    pub fn take(&mut self) -> LinkApprovalTake {
        LinkApprovalTake {
            inner: self.inner.take(),
        }
    }
}

/// The approval argument of `Device.approveLink`, taken out of its object.
pub(crate) fn take_approval(v: &JsValue) -> Result<client::LinkApproval, Error> {
    let wrong = || Error::wrong_type("approval", "a LinkApproval (from respondToLink)");
    if !v.is_object() {
        return Err(wrong());
    }
    let take = js::field(v, TAKE)?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| wrong())?;
    let taken = take
        .call0(v)
        .map_err(|_| Error::invalid("approval", "is a LinkApproval that was freed"))?;
    LinkApprovalTake::try_from_js_value(taken)
        .map_err(|_| wrong())?
        .inner
        .ok_or_else(|| Error::new(CONSUMED, "this link approval was already used"))
}
