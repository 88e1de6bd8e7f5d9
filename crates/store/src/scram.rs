//! TEMPORARY STUB until portcullis-wire exposes ScramSecret.
pub(crate) fn scram_secret_for(password: &str) -> String {
    format!("SCRAM-SHA-256$4096:STUB${}:STUB", password.len())
}
