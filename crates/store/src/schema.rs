//! Connection set-up and schema migrations.
//!
//! Migrations are an ordered list of SQL scripts; `schema_version` records how many have been applied.
//! Only ever append to [`MIGRATIONS`]; never edit an applied entry. The SQL stays plain (no SQLite-only
//! types) so the PostgreSQL implementation can mirror it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;

/// The schema, one script per version (index 0 is version 1).
const MIGRATIONS: &[&str] = &[
    // 1: users, roles, resources, audit log.
    r#"
    CREATE TABLE store_meta (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        scram_secret  TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE roles (
        name       TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE role_members (
        role_name TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
        user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        PRIMARY KEY (role_name, user_name)
    );
    CREATE INDEX role_members_user ON role_members(user_name);
    CREATE TABLE resources (
        name         TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        port         INTEGER NOT NULL,
        database     TEXT NOT NULL,
        tls          TEXT NOT NULL,
        username     TEXT NOT NULL,
        password_enc BLOB NOT NULL,
        created_at   BIGINT NOT NULL,
        updated_at   BIGINT NOT NULL
    );
    CREATE TABLE audit_events (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        kind             TEXT NOT NULL,
        at               BIGINT NOT NULL,
        session_id       TEXT NOT NULL,
        user_name        TEXT NOT NULL,
        resource         TEXT NOT NULL,
        client_addr      TEXT NOT NULL,
        phase            TEXT,
        auth_result      TEXT,
        tls              INTEGER,
        application_name TEXT,
        bytes_in         BIGINT,
        bytes_out        BIGINT,
        detail           TEXT,
        statement_text   TEXT,
        statement_kind   TEXT,
        objects          TEXT,
        object_names     TEXT,
        param_count      INTEGER,
        row_count        BIGINT,
        duration_us      BIGINT,
        decision         TEXT,
        outcome          TEXT,
        sqlstate         TEXT,
        message          TEXT
    );
    CREATE INDEX audit_events_at ON audit_events(at);
    CREATE INDEX audit_events_user ON audit_events(user_name);
    CREATE INDEX audit_events_resource ON audit_events(resource);
    "#,
    // 2: applied policies (every version kept) and device trust reports.
    r#"
    CREATE TABLE policies (
        version    INTEGER PRIMARY KEY AUTOINCREMENT,
        source     TEXT NOT NULL,
        text       TEXT NOT NULL,
        applied_at BIGINT NOT NULL,
        applied_by TEXT NOT NULL
    );
    CREATE TABLE device_reports (
        user_name   TEXT NOT NULL,
        address     TEXT NOT NULL,
        device      TEXT NOT NULL,
        trust       TEXT NOT NULL,
        reported_at BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        PRIMARY KEY (user_name, address)
    );
    "#,
    // 3: user attributes, the values row filters read as `:user.attributes.<key>`.
    r#"
    CREATE TABLE user_attributes (
        user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        key       TEXT NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (user_name, key)
    );
    "#,
    // 4: approval requests (on-demand access and held statements) and their endorsements.
    r#"
    CREATE TABLE requests (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        kind             TEXT NOT NULL,
        requester        TEXT NOT NULL,
        resource         TEXT NOT NULL,
        workflow         TEXT NOT NULL,
        reason           TEXT NOT NULL,
        status           TEXT NOT NULL,
        created_at       BIGINT NOT NULL,
        expires_at       BIGINT NOT NULL,
        decided_at       BIGINT,
        bundle           TEXT,
        objects          TEXT,
        privileges       TEXT,
        duration_ms      BIGINT,
        statement_text   TEXT,
        statement_sha256 TEXT,
        summary          TEXT,
        valid_until      BIGINT
    );
    CREATE INDEX requests_status ON requests(status);
    CREATE INDEX requests_statement ON requests(requester, resource, statement_sha256);
    CREATE TABLE endorsements (
        request_id INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
        approver   TEXT NOT NULL,
        decision   TEXT NOT NULL,
        at         BIGINT NOT NULL,
        comment    TEXT,
        PRIMARY KEY (request_id, approver)
    );
    "#,
    // 5: MFA: each user's TOTP enrolment (secret encrypted with the master key, the last time step a
    // code was accepted for, against replay) and the verifications the gateway's MFA rules read.
    r#"
    CREATE TABLE mfa_enrolments (
        user_name   TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
        method      TEXT NOT NULL,
        secret_enc  BLOB NOT NULL,
        enrolled_at BIGINT NOT NULL,
        last_step   BIGINT
    );
    CREATE TABLE mfa_verifications (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        method    TEXT NOT NULL,
        at        BIGINT NOT NULL
    );
    CREATE INDEX mfa_verifications_user ON mfa_verifications(user_name, at);
    "#,
    // 6: reservations (a connection window on a resource) and escalation of undecided requests.
    r#"
    ALTER TABLE requests ADD COLUMN window_from BIGINT;
    ALTER TABLE requests ADD COLUMN window_until BIGINT;
    ALTER TABLE requests ADD COLUMN escalated_at BIGINT;
    CREATE INDEX requests_window ON requests(kind, requester, resource, window_until);
    "#,
    // 7: notifications of workflow steps: the message (written when a request is filed or concluded),
    // each recipient's inbox entry, and the outbox of e-mail and webhook deliveries a gateway makes
    // from it, with every attempt.
    r#"
    CREATE TABLE notifications (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL,
        event      TEXT NOT NULL,
        requester  TEXT NOT NULL,
        resource   TEXT NOT NULL,
        workflow   TEXT NOT NULL,
        recipients TEXT NOT NULL,
        subject    TEXT NOT NULL,
        body       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        fanned_out INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX notifications_fan_out ON notifications(fanned_out);
    CREATE TABLE notification_inbox (
        notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
        user_name       TEXT NOT NULL,
        read_at         BIGINT,
        PRIMARY KEY (notification_id, user_name)
    );
    CREATE INDEX notification_inbox_user ON notification_inbox(user_name, read_at);
    CREATE TABLE notification_deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
        channel         TEXT NOT NULL,
        target          TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        last_error      TEXT,
        delivered_at    BIGINT
    );
    CREATE INDEX notification_deliveries_due ON notification_deliveries(status, next_attempt_at);
    CREATE TABLE notification_attempts (
        delivery_id INTEGER NOT NULL REFERENCES notification_deliveries(id) ON DELETE CASCADE,
        attempt     INTEGER NOT NULL,
        at          BIGINT NOT NULL,
        error       TEXT,
        PRIMARY KEY (delivery_id, attempt)
    );
    "#,
    // 8: HTTP API tokens, kept only as SHA-256 hashes: named admin/auditor tokens from the CLI and the
    // short-lived tokens a user's API login issues (name NULL, user_name set).
    r#"
    CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        token_sha256 TEXT NOT NULL UNIQUE,
        name         TEXT,
        role         TEXT,
        user_name    TEXT REFERENCES users(name) ON DELETE CASCADE,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT
    );
    CREATE UNIQUE INDEX api_tokens_name ON api_tokens(name) WHERE name IS NOT NULL;
    "#,
    // 9: the strict audit journals (one per writing process) and the last of each one's records the
    // audit log holds; see audit/journal.rs.
    r#"
    CREATE TABLE audit_journals (
        name  TEXT PRIMARY KEY,
        seq   BIGINT NOT NULL
    );
    "#,
    // 10: the audit journal became the audit log (audit/journal/); `audit_events` is its index. Each
    // row names its journal record; `audit_index` holds the sequence the index has read up to.
    r#"
    DROP TABLE audit_journals;
    ALTER TABLE audit_events ADD COLUMN seq BIGINT;
    CREATE UNIQUE INDEX audit_events_seq ON audit_events(seq);
    CREATE TABLE audit_index (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  BIGINT NOT NULL
    );
    INSERT INTO audit_index (id, seq) VALUES (1, 0);
    "#,
    // 11: a session's replay reads its records by session id, however old.
    r#"
    CREATE INDEX audit_events_session ON audit_events(session_id);
    "#,
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Opens a connection with the pragmas every connection needs.
/// `synchronous_full` false means NORMAL (WAL: durable against process crashes, not power loss).
pub(crate) fn open_connection(
    path: &Path,
    synchronous_full: bool,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot switch the database to WAL mode (got {mode:?})"
        )));
    }
    conn.pragma_update(
        None,
        "synchronous",
        if synchronous_full { "FULL" } else { "NORMAL" },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Brings the schema up to date. Runs under an IMMEDIATE transaction per step so two processes opening
/// the same file at once do not both apply a migration.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        if found > current_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: current_version(),
            });
        }
        let Some(script) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        tx.execute_batch(script)?;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [found + 1],
        )?;
        tx.commit()?;
        tracing::info!(version = found + 1, "applied store schema migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_rejects_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = open_connection(&path, true).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, current_version());
        conn.execute("UPDATE schema_version SET version = 999", [])
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
    }
}
