//! Applying the journal's retention from the gateway: at start and every [`EVERY`], holding back
//! segments a sink has not delivered (see `portcullis_store`'s journal retention for what is removed
//! and how `verify` keeps vouching for the rest).

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{RetentionPolicy, Store};
use tokio::sync::watch;

use crate::monitor::hold;
use crate::runner::Shared;

/// How often retention looks at the journal.
const EVERY: Duration = Duration::from_secs(60);

pub(crate) async fn run(
    store: Store,
    policy: RetentionPolicy,
    sinks: Vec<Arc<Shared>>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let hold = hold(&sinks);
        let store = store.clone();
        let pass =
            tokio::task::spawn_blocking(move || store.apply_audit_retention(&policy, hold)).await;
        match pass {
            Ok(Ok(outcome)) => {
                if outcome.removed_segments > 0 {
                    tracing::info!(
                        segments = outcome.removed_segments,
                        bytes = outcome.removed_bytes,
                        first_kept = ?outcome.first_kept,
                        "audit journal retention removed old segments"
                    );
                }
                if outcome.held_for_sinks > 0 {
                    tracing::info!(
                        segments = outcome.held_for_sinks,
                        "audit journal segments due for removal are kept until every sink has delivered them"
                    );
                }
                if let Some((from, to)) = outcome.undelivered {
                    tracing::error!(
                        from,
                        to,
                        "audit journal retention's hard cap removed records a sink had not delivered"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "audit journal retention failed"),
            Err(e) => tracing::error!(error = %e, "audit journal retention stopped"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
