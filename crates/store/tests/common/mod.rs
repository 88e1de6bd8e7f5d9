#![allow(dead_code)]

use std::path::{Path, PathBuf};

use portcullis_store::{
    AuditEvent, AuditObject, ConnectionEvent, ConnectionPhase, Durability, MasterKey,
    StatementEvent, Store,
};

/// Fields drop in order: the store first, so its closing checkpoint and the index's last read find the
/// folder still there (the other way round, every strict test waited out the index's stop timeout).
pub struct TestStore {
    pub store: Store,
    pub key: MasterKey,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new(durability: Durability) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let store = Store::open(&db_path(dir.path()), key.clone(), durability).unwrap();
        TestStore { dir, key, store }
    }

    pub fn path(&self) -> PathBuf {
        db_path(self.dir.path())
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("portcullis.db")
}

pub fn statement(
    user: &str,
    resource: &str,
    at: i64,
    text: &str,
    objects: &[(&str, &str)],
) -> AuditEvent {
    AuditEvent::Statement(StatementEvent {
        session_id: format!("s-{user}"),
        at,
        user: user.into(),
        resource: resource.into(),
        client_addr: "127.0.0.1:50000".into(),
        text: text.into(),
        kind: text.split_whitespace().next().unwrap_or("").to_lowercase(),
        objects: objects
            .iter()
            .map(|(name, op)| AuditObject {
                name: (*name).into(),
                operation: (*op).into(),
            })
            .collect(),
        param_count: 0,
        rows: Some(1),
        duration_us: 42,
        decision: "allow".into(),
        outcome: "ok".into(),
        sqlstate: None,
        message: None,
        policy: None,
    })
}

pub fn connection(user: &str, resource: &str, at: i64, phase: ConnectionPhase) -> AuditEvent {
    AuditEvent::Connection(ConnectionEvent {
        session_id: format!("s-{user}"),
        phase,
        at,
        user: user.into(),
        client_addr: "10.0.0.1:40000".into(),
        resource: resource.into(),
        auth_result: "ok".into(),
        tls: true,
        application_name: Some("psql".into()),
        bytes_in: 10,
        bytes_out: u64::MAX,
        detail: None,
    })
}

/// The audit journal's folder for the database in `dir`.
pub fn journal_dir(dir: &Path) -> PathBuf {
    dir.join("portcullis.db.journal")
}

/// The audit journal's segment files for the database in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(journal_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    found.sort();
    found
}
