mod common;

use common::TestStore;
use portcullis_store::{Durability, StoreError};

#[test]
fn users_add_duplicate_verify_remove() {
    let t = TestStore::new(Durability::Strict);
    let s = &t.store;
    s.add_user("alice", "correct horse").unwrap();
    assert!(matches!(
        s.add_user("alice", "other"),
        Err(StoreError::AlreadyExists { kind: "user", .. })
    ));
    assert!(matches!(
        s.add_user("", "pw"),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.add_user("bob", ""),
        Err(StoreError::Invalid { .. })
    ));

    assert!(s.verify_password("alice", "correct horse").unwrap());
    assert!(!s.verify_password("alice", "wrong").unwrap());
    assert!(!s.verify_password("nobody", "correct horse").unwrap());

    s.set_password("alice", "battery staple").unwrap();
    assert!(!s.verify_password("alice", "correct horse").unwrap());
    assert!(s.verify_password("alice", "battery staple").unwrap());
    assert!(matches!(
        s.set_password("nobody", "x"),
        Err(StoreError::NotFound { kind: "user", .. })
    ));

    let login = s.user_login("alice").unwrap().unwrap();
    assert_eq!(login.name, "alice");
    assert!(login.scram_secret.starts_with("SCRAM-SHA-256$"));
    assert!(!format!("{login:?}").contains(&login.scram_secret));
    assert!(s.user_login("nobody").unwrap().is_none());

    let users = s.list_users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "alice");
    assert!(!users[0].disabled);
    let json = serde_json::to_value(&users[0]).unwrap();
    assert!(json["created_at"].as_str().unwrap().contains('T'));

    s.set_user_disabled("alice", true).unwrap();
    assert!(s.user_login("alice").unwrap().is_none());
    assert!(!s.verify_password("alice", "battery staple").unwrap());
    assert!(s.list_users().unwrap()[0].disabled);
    s.set_user_disabled("alice", false).unwrap();
    assert!(s.user_login("alice").unwrap().is_some());

    s.remove_user("alice").unwrap();
    assert!(matches!(
        s.remove_user("alice"),
        Err(StoreError::NotFound { kind: "user", .. })
    ));
    assert!(s.list_users().unwrap().is_empty());
    assert!(!s.verify_password("alice", "battery staple").unwrap());
}

#[test]
fn user_attributes_reach_the_login_and_go_with_the_user() {
    let t = TestStore::new(Durability::Strict);
    let s = &t.store;
    s.add_user("bob", "pw").unwrap();
    s.set_user_attribute("bob", "region", "south").unwrap();
    s.set_user_attribute("bob", "region", "north").unwrap();
    s.set_user_attribute("bob", "team", "ops").unwrap();
    let login = s.user_login("bob").unwrap().unwrap();
    assert_eq!(
        login.attributes.get("region").map(String::as_str),
        Some("north")
    );
    assert_eq!(login.attributes.len(), 2);
    assert!(matches!(
        s.set_user_attribute("bob", "bad key", "x"),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.set_user_attribute("nobody", "region", "x"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.remove_user_attribute("bob", "team").unwrap());
    assert!(!s.remove_user_attribute("bob", "team").unwrap());
    assert_eq!(s.list_users().unwrap()[0].attributes.len(), 1);
    s.remove_user("bob").unwrap();
    s.add_user("bob", "pw").unwrap();
    assert!(s.user_login("bob").unwrap().unwrap().attributes.is_empty());
}

#[test]
fn scram_secret_differs_per_user_and_password() {
    let t = TestStore::new(Durability::Strict);
    t.store.add_user("a", "same").unwrap();
    t.store.add_user("b", "same").unwrap();
    let a = t.store.user_login("a").unwrap().unwrap().scram_secret;
    let b = t.store.user_login("b").unwrap().unwrap().scram_secret;
    assert_ne!(a, b, "salts must be random");
    // The stored secret is the verifier of this very password (and only of it).
    let parsed = portcullis_wire::ScramSecret::parse(&a).unwrap();
    let derive = |pw: &str| {
        portcullis_wire::ScramSecret::from_password(pw, &parsed.salt, parsed.iterations)
            .to_pg_string()
    };
    assert_eq!(derive("same"), a);
    assert_ne!(derive("other"), a);
    t.store.set_password("a", "changed").unwrap();
    let changed = t.store.user_login("a").unwrap().unwrap().scram_secret;
    let parsed = portcullis_wire::ScramSecret::parse(&changed).unwrap();
    assert_eq!(
        portcullis_wire::ScramSecret::from_password("changed", &parsed.salt, parsed.iterations)
            .to_pg_string(),
        changed
    );
}

#[test]
fn roles_grant_revoke_list_and_cascade() {
    let t = TestStore::new(Durability::Strict);
    let s = &t.store;
    s.add_user("alice", "pw1").unwrap();
    s.add_user("bob", "pw2").unwrap();
    s.add_role("dba").unwrap();
    s.add_role("analyst").unwrap();
    assert!(matches!(
        s.add_role("dba"),
        Err(StoreError::AlreadyExists { kind: "role", .. })
    ));

    s.grant_role("alice", "dba").unwrap();
    s.grant_role("alice", "dba").unwrap(); // idempotent
    s.grant_role("bob", "dba").unwrap();
    s.grant_role("alice", "analyst").unwrap();
    assert!(matches!(
        s.grant_role("carol", "dba"),
        Err(StoreError::NotFound { kind: "user", .. })
    ));
    assert!(matches!(
        s.grant_role("alice", "nope"),
        Err(StoreError::NotFound { kind: "role", .. })
    ));

    let roles = s.list_roles().unwrap();
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0].name, "analyst");
    assert_eq!(roles[0].members, vec!["alice"]);
    assert_eq!(roles[1].name, "dba");
    assert_eq!(roles[1].members, vec!["alice", "bob"]);
    assert_eq!(
        s.user_login("alice").unwrap().unwrap().roles,
        vec!["analyst", "dba"]
    );
    let users = s.list_users().unwrap();
    assert_eq!(users[0].roles, vec!["analyst", "dba"]);
    assert_eq!(users[1].roles, vec!["dba"]);

    s.revoke_role("alice", "dba").unwrap();
    assert!(matches!(
        s.revoke_role("alice", "dba"),
        Err(StoreError::NotFound {
            kind: "role membership",
            ..
        })
    ));
    assert_eq!(
        s.user_login("alice").unwrap().unwrap().roles,
        vec!["analyst"]
    );

    // Removing a user or a role removes its memberships.
    s.remove_user("bob").unwrap();
    assert!(s.list_roles().unwrap()[1].members.is_empty());
    s.remove_role("analyst").unwrap();
    assert!(s.user_login("alice").unwrap().unwrap().roles.is_empty());
    assert!(matches!(
        s.remove_role("analyst"),
        Err(StoreError::NotFound { kind: "role", .. })
    ));
    let names: Vec<_> = s
        .list_roles()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["dba"]);
}

#[test]
fn state_survives_reopen() {
    let t = TestStore::new(Durability::Strict);
    t.store.add_user("alice", "pw").unwrap();
    t.store.add_role("dba").unwrap();
    t.store.grant_role("alice", "dba").unwrap();
    let TestStore { dir, key, store } = t;
    drop(store);
    let again =
        portcullis_store::Store::open(&common::db_path(dir.path()), key, Durability::Strict)
            .unwrap();
    assert!(again.verify_password("alice", "pw").unwrap());
    assert_eq!(again.list_roles().unwrap()[0].members, vec!["alice"]);
}
