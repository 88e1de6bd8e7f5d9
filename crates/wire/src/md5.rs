//! PostgreSQL's legacy MD5 password hashing.

use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The stored form `"md5" + hex(md5(password + user))`, as in `pg_authid.rolpassword`.
pub fn md5_stored_hash(user: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(password.as_bytes());
    h.update(user.as_bytes());
    format!("md5{}", hex(&h.finalize()))
}

/// The PasswordMessage answer to AuthenticationMD5Password:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let stored = md5_stored_hash(user, password);
    md5_password_from_hash(&stored, salt)
}

/// Like [`md5_password`] but starting from a stored `md5...` hash (what a server knows).
pub fn md5_password_from_hash(stored_hash: &str, salt: [u8; 4]) -> String {
    let inner = stored_hash.strip_prefix("md5").unwrap_or(stored_hash);
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(salt);
    format!("md5{}", hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // md5("postgres" + "postgres"), as psql/PG compute it.
        assert_eq!(
            md5_stored_hash("postgres", "postgres"),
            "md53175bce1d3201d16594cebf9d7eb3f9d"
        );
        let salted = md5_password("postgres", "postgres", [1, 2, 3, 4]);
        assert_eq!(salted.len(), 35);
        assert!(salted.starts_with("md5"));
        assert_eq!(
            salted,
            md5_password_from_hash("md53175bce1d3201d16594cebf9d7eb3f9d", [1, 2, 3, 4])
        );
        assert_ne!(salted, md5_password("postgres", "postgres", [1, 2, 3, 5]));
    }
}
