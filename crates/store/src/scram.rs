//! The one place the store depends on the wire crate: deriving the SCRAM-SHA-256 verifier that the
//! gateway's authentication exchange checks clients against.

/// The SCRAM-SHA-256 secret for `password`, in PostgreSQL's `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` form.
pub(crate) fn scram_secret_for(password: &str) -> String {
    portcullis_wire::ScramSecret::generate(password).to_pg_string()
}
