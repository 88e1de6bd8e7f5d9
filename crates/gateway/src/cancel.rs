//! Gateway-issued cancel keys, mapped to the upstream keys they stand for.
//!
//! Clients never learn an upstream's secret: they get the upstream's process id (drivers compare it with
//! `pg_backend_pid()`, a NOTIFY's sender, `pg_terminate_backend`) with a secret the gateway made, and a
//! CancelRequest carrying that key is relayed to the right upstream with the real one. The session hears of
//! it too, for a statement the gateway itself holds (waiting for MFA) and has not sent upstream.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;
use portcullis_wire::{encode_cancel_request, CancelKey};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::upstream::{self, CancelTarget};

/// A live session's upstream, its key there, and the count of cancel requests it was sent.
type Entry = (CancelTarget, CancelKey, watch::Sender<u64>);

/// All live sessions' cancel keys.
#[derive(Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<CancelKey, Entry>>,
}

impl CancelRegistry {
    /// Issues a key for a session whose upstream key is `upstream_key` — its process id with a fresh
    /// secret, as upstreams of different resources may share process ids — with what counts the cancel
    /// requests the session is sent.
    pub fn register(
        &self,
        target: CancelTarget,
        upstream_key: CancelKey,
    ) -> (CancelKey, watch::Receiver<u64>) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let key = CancelKey {
                process_id: upstream_key.process_id,
                secret_key: rand::random(),
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(key) {
                let (cancels, cancelled) = watch::channel(0);
                slot.insert((target, upstream_key, cancels));
                return (key, cancelled);
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
            .map(|(target, upstream_key, cancels)| {
                cancels.send_modify(|n| *n += 1);
                (target.clone(), *upstream_key)
            });
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
