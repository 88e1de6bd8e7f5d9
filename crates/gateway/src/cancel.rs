//! Gateway-issued cancel keys, mapped to the upstream keys they stand for.
//!
//! Clients never learn an upstream's process id or secret: they get a key the gateway made, and a
//! CancelRequest carrying it is relayed to the right upstream with the real key.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;
use portcullis_wire::{encode_cancel_request, CancelKey};
use tokio::io::AsyncWriteExt;

use crate::upstream::{self, CancelTarget};

/// All live sessions' cancel keys.
#[derive(Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<CancelKey, (CancelTarget, CancelKey)>>,
}

impl CancelRegistry {
    /// Issues a fresh gateway key for a session whose upstream key is `upstream_key`.
    pub fn register(&self, target: CancelTarget, upstream_key: CancelKey) -> CancelKey {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let key = CancelKey {
                process_id: rand::random::<i32>() & i32::MAX,
                secret_key: rand::random(),
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(key) {
                slot.insert((target, upstream_key));
                return key;
            }
        }
    }

    /// Forgets a session's key when the session ends.
    pub fn remove(&self, key: &CancelKey) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Relays a client's CancelRequest. Unknown keys are ignored, as PostgreSQL does, so a guesser learns
    /// nothing.
    pub async fn cancel(&self, key: CancelKey) {
        let found = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let Some((target, upstream_key)) = found else {
            tracing::debug!("cancel request with an unknown key");
            return;
        };
        match upstream::open(&target).await {
            Ok(mut stream) => {
                let mut out = BytesMut::new();
                encode_cancel_request(upstream_key, &mut out);
                if let Err(e) = stream.write_all(&out).await {
                    tracing::warn!(error = %e, "could not send a cancel request upstream");
                }
                let _ = stream.shutdown().await;
            }
            Err(e) => tracing::warn!(error = %e, "could not reach the upstream to cancel"),
        }
    }
}
