mod common;

use common::TestStore;
use portcullis_store::{Durability, MasterKey, ResourceSpec, Secret, Store, StoreError, TlsMode};

const PASSWORD: &str = "upstream-Pa55-very-distinctive";

fn spec(name: &str) -> ResourceSpec {
    ResourceSpec {
        name: name.into(),
        host: "db.internal".into(),
        port: 5432,
        database: "app".into(),
        tls: TlsMode::VerifyFull,
        username: "gateway".into(),
        password: Secret::new(PASSWORD),
    }
}

#[test]
fn add_list_get_update_remove() {
    let t = TestStore::new(Durability::Strict);
    let s = &t.store;
    s.add_resource(&spec("prod")).unwrap();
    assert!(matches!(
        s.add_resource(&spec("prod")),
        Err(StoreError::AlreadyExists {
            kind: "resource",
            ..
        })
    ));
    let mut bad = spec("bad");
    bad.port = 0;
    assert!(matches!(
        s.add_resource(&bad),
        Err(StoreError::Invalid { what: "port", .. })
    ));

    let list = s.list_resources().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "prod");
    assert_eq!(list[0].tls, TlsMode::VerifyFull);
    let listed = serde_json::to_string(&list).unwrap();
    assert!(!listed.contains(PASSWORD));
    assert!(listed.contains("\"verify-full\""));

    let r = s.resource("prod").unwrap().unwrap();
    assert_eq!(r.username, "gateway");
    assert_eq!(r.password.expose(), PASSWORD);
    assert_eq!(r.info.host, "db.internal");
    assert_eq!(r.info.port, 5432);
    assert!(!format!("{r:?}").contains(PASSWORD));
    assert!(s.resource("nope").unwrap().is_none());

    s.update_credential("prod", "gw2", &Secret::new("new-secret"))
        .unwrap();
    let r = s.resource("prod").unwrap().unwrap();
    assert_eq!(
        (r.username.as_str(), r.password.expose()),
        ("gw2", "new-secret")
    );
    assert!(matches!(
        s.update_credential("nope", "u", &Secret::new("p")),
        Err(StoreError::NotFound {
            kind: "resource",
            ..
        })
    ));

    s.remove_resource("prod").unwrap();
    assert!(matches!(
        s.remove_resource("prod"),
        Err(StoreError::NotFound {
            kind: "resource",
            ..
        })
    ));
    assert!(s.list_resources().unwrap().is_empty());
}

#[test]
fn tls_mode_parses_and_prints() {
    for (text, mode) in [
        ("disable", TlsMode::Disable),
        ("prefer", TlsMode::Prefer),
        ("require", TlsMode::Require),
        ("verify-full", TlsMode::VerifyFull),
    ] {
        assert_eq!(text.parse::<TlsMode>().unwrap(), mode);
        assert_eq!(mode.to_string(), text);
    }
    assert!("verify_full".parse::<TlsMode>().is_err());
}

fn raw_bytes_of_all_db_files(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // The audit journal's folder.
            all.extend(raw_bytes_of_all_db_files(&path));
        } else {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn plaintext_secrets_never_reach_the_file() {
    let t = TestStore::new(Durability::Strict);
    t.store.add_resource(&spec("prod")).unwrap();
    t.store
        .add_user("alice", "user-password-also-distinctive")
        .unwrap();
    // Sanity check of the method: a non-secret value is found in the same bytes.
    let raw = raw_bytes_of_all_db_files(t.dir.path());
    assert!(contains(&raw, b"db.internal"));
    assert!(!contains(&raw, PASSWORD.as_bytes()));
    assert!(!contains(&raw, b"user-password-also-distinctive"));

    let TestStore { dir, store, .. } = t;
    drop(store); // checkpoints the WAL into the main file
    let raw = raw_bytes_of_all_db_files(dir.path());
    assert!(contains(&raw, b"db.internal"));
    assert!(!contains(&raw, PASSWORD.as_bytes()));
}

#[test]
fn wrong_master_key_is_refused_clearly() {
    let t = TestStore::new(Durability::Strict);
    t.store.add_resource(&spec("prod")).unwrap();
    let path = t.path();
    drop(t.store);
    let err = Store::open(&path, MasterKey::generate(), Durability::Strict).unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey), "{err:?}");
    assert!(err.to_string().contains("master key"));
    // The right key still works.
    let s = Store::open(&path, t.key.clone(), Durability::Strict).unwrap();
    assert_eq!(
        s.resource("prod").unwrap().unwrap().password.expose(),
        PASSWORD
    );
}

#[test]
fn ciphertext_is_bound_to_its_resource() {
    let t = TestStore::new(Durability::Strict);
    t.store.add_resource(&spec("a")).unwrap();
    t.store.add_resource(&spec("b")).unwrap();
    // An attacker with write access to the file copies a's ciphertext onto b.
    let raw = rusqlite::Connection::open(t.path()).unwrap();
    raw.execute(
        "UPDATE resources SET password_enc = (SELECT password_enc FROM resources WHERE name = 'a') \
         WHERE name = 'b'",
        [],
    )
    .unwrap();
    let err = t.store.resource("b").unwrap_err();
    assert!(
        matches!(&err, StoreError::Decrypt { resource } if resource == "b"),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains("wrong master key or corrupted data"));
    assert!(t.store.resource("a").unwrap().is_some());
}

#[test]
fn key_file_round_trip_opens_store() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("master.key");
    let db = dir.path().join("s.db");
    let s = Store::open(
        &db,
        MasterKey::load_or_create(&key_path).unwrap(),
        Durability::Strict,
    )
    .unwrap();
    s.add_resource(&spec("prod")).unwrap();
    drop(s);
    let s = Store::open(
        &db,
        MasterKey::load_or_create(&key_path).unwrap(),
        Durability::Strict,
    )
    .unwrap();
    assert_eq!(
        s.resource("prod").unwrap().unwrap().password.expose(),
        PASSWORD
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "database file must not be group/world readable"
        );
    }
}
