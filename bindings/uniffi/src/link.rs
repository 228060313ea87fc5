//! Device linking (spec §8.5): the new device's side, and the existing
//! device's pending approval.

use crate::device::{Device, Linked, os_rng, store};
use crate::error::DeviceError;
use crate::store::RecordStore;
use crate::types::{DeviceInfo, SasEmoji, sas_emoji, storage_key};
use session_ratchet::client::{
    LinkApproval as CoreLinkApproval, LinkingDevice as CoreLinkingDevice,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// The existing device's side of a link in progress (from
/// `Device.respondToLink`): show `sas()` and the requesting
/// device's description, and ask the user whether the new device shows the
/// same emoji. Used once, by `Device.approveLink`.
#[derive(uniffi::Object)]
pub struct LinkApproval {
    sas: Vec<SasEmoji>,
    description: String,
    inner: Mutex<Option<CoreLinkApproval>>,
}

impl std::fmt::Debug for LinkApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkApproval").finish_non_exhaustive()
    }
}

impl LinkApproval {
    pub(crate) fn wrap(approval: CoreLinkApproval) -> Result<Arc<Self>, DeviceError> {
        Ok(Arc::new(Self {
            sas: sas_emoji(approval.sas())?,
            description: approval.description().to_owned(),
            inner: Mutex::new(Some(approval)),
        }))
    }

    pub(crate) fn take(&self) -> Result<CoreLinkApproval, DeviceError> {
        self.inner
            .lock()
            .map_err(|_| DeviceError::Internal("link approval lock poisoned".to_owned()))?
            .take()
            .ok_or_else(|| {
                DeviceError::LinkOutOfOrder("this link approval was already used".to_owned())
            })
    }
}

#[uniffi::export]
impl LinkApproval {
    /// The 7 emoji of the SAS, with their names, to show.
    pub fn sas(&self) -> Vec<SasEmoji> {
        self.sas.clone()
    }

    /// The requesting device's description, to show next to the SAS.
    pub fn description(&self) -> String {
        self.description.clone()
    }
}

/// A new device joining an account, before it has a store: `start`, send
/// `request()` to an existing device (a QR code), show the SAS that
/// `receiveResponse` returns, and `finish` with the payload once the user
/// confirmed on the existing device. Calls are serialised like a device's.
#[derive(uniffi::Object)]
pub struct LinkingDevice {
    inner: Mutex<CoreLinkingDevice>,
}

impl std::fmt::Debug for LinkingDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkingDevice").finish_non_exhaustive()
    }
}

impl LinkingDevice {
    fn lock(&self) -> Result<MutexGuard<'_, CoreLinkingDevice>, DeviceError> {
        self.inner.lock().map_err(|_| {
            DeviceError::Internal(
                "an earlier call on this linking device failed inside the library; start again"
                    .to_owned(),
            )
        })
    }
}

#[uniffi::export]
impl LinkingDevice {
    /// Starts a link: a fresh identity and the request to hand over.
    #[uniffi::constructor]
    pub fn start(info: DeviceInfo) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(CoreLinkingDevice::start(os_rng(), &(&info).into())),
        })
    }

    /// The link request to hand to an existing device of the account.
    pub fn request(&self) -> Vec<u8> {
        // The request is fixed at start; it reads even after a panic.
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .request()
            .to_vec()
    }

    /// Takes the existing device's response and returns the SAS to show. A
    /// forged response fails here or shows a different SAS; the link stays
    /// open for the genuine one.
    pub fn receive_response(&self, response: Vec<u8>) -> Result<Vec<SasEmoji>, DeviceError> {
        let mut link = self.lock()?;
        let sas = link.receive_response(&response)?;
        sas_emoji(sas)
    }

    /// Opens the approving device's payload and becomes a device of the
    /// account, committed to `store` (which must be empty). On error
    /// nothing is written and another payload may be tried.
    pub fn finish(
        &self,
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        payload: Vec<u8>,
        now: u64,
    ) -> Result<Linked, DeviceError> {
        let key = self::storage_key(storage_key)?;
        let linked = self
            .lock()?
            .finish(self::store(store), &key, &payload, now)?;
        Ok(Linked {
            device: Device::wrap(linked.device),
            contacts: linked
                .contacts
                .iter()
                .map(|k| k.to_bytes().to_vec())
                .collect(),
        })
    }
}
