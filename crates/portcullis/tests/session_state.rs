//! The gateway follows the session state the server reads statements with (issue 16): startup
//! parameters are decided like SET, text is read in the session's client encoding and under its
//! standard_conforming_strings, and names resolve through the search_path the server has. Real gateway,
//! real PostgreSQL; every check is on what the server did, next to what the gateway said.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{
    connection_of, denial, first_value, fresh_database, refused_login, Gateway, ALICE_PASSWORD,
    BOB_PASSWORD,
};
use portcullis_testkit::{PgServer, APP_PASSWORD, APP_USER};
use tokio_postgres::SimpleQueryMessage;

/// alice may do anything; bob may read public.employees and run public.scs_off, nothing else.
const POLICY: &str = "\
grants:
  - to: {user: alice}
    resource: app
    objects: ['*']
    privileges: [all]
  - to: {user: bob}
    resource: app
    objects: [public.employees]
    privileges: [select]
  - to: {user: bob}
    resource: app
    objects: [public.scs_off, public.to_hr]
    privileges: [execute]
";

async fn start(name: &str) -> (&'static PgServer, Gateway) {
    let pg = fresh_database(name);
    let gw = Gateway::start_with_policy(pg, name, "", Some(POLICY));
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA hr;
             CREATE TABLE hr.employees(id int, note text);
             INSERT INTO hr.employees VALUES (1, 'hr-row');
             CREATE TABLE public.employees(id int, note text);
             INSERT INTO public.employees VALUES (1, 'public-row');
             CREATE TABLE public.secret_t(s text);
             INSERT INTO public.secret_t VALUES ('TOPSECRET');
             CREATE FUNCTION public.scs_off() RETURNS text LANGUAGE sql AS
               $$ SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false) $$;
             CREATE FUNCTION public.to_hr() RETURNS text LANGUAGE sql AS
               $$ SELECT pg_catalog.set_config('search_path', 'hr', false) $$;",
        )
        .await
        .expect("fixtures");
    (pg, gw)
}

/// The objects the newest audited statement with exactly `text` touched.
fn objects_of(gw: &Gateway, text: &str) -> Vec<String> {
    let records = gw.statements(&[]);
    let record = records
        .iter()
        .rev()
        .find(|r| r["text"] == text)
        .unwrap_or_else(|| panic!("no audit record for {text:?}"));
    record["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| o["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A. Startup parameters are decided like SET.

#[tokio::test(flavor = "multi_thread")]
async fn identity_changing_startup_parameters_refuse_the_login() {
    let (_pg, gw) = start("state_startup_identity").await;
    for (setting, options) in [
        ("role", "options='-c role=postgres'"),
        ("role", "options='--role=postgres'"),
        (
            "session_authorization",
            "options='-c session_authorization=postgres'",
        ),
    ] {
        let (code, message) = refused_login(&gw, "bob", BOB_PASSWORD, options).await;
        assert_eq!(code, "42501", "{options}: {message}");
        assert!(
            message.contains(&format!("startup parameter {setting} is not allowed")),
            "{options}: {message}"
        );
    }
    // Switches that set settings under other names are not read, so they are refused.
    let (code, message) = refused_login(&gw, "bob", BOB_PASSWORD, "options='-e'").await;
    assert_eq!(code, "0A000", "{message}");
    // Recorded like every refused connection, with the refused SET as a denied statement.
    let rejected: Vec<_> = gw
        .audit(&["--kind", "connections"])
        .into_iter()
        .filter(|r| {
            connection_of(r)["auth_result"]
                .as_str()
                .is_some_and(|a| a.contains("startup parameter role refused"))
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let denied = gw.statements(&["--user", "bob", "--decision", "deny"]);
    assert!(
        denied.iter().any(|s| s["text"] == "SET role = 'postgres'"),
        "{denied:?}"
    );
    // An ordinary setting is let through, and the server has it.
    let bob = gw
        .connect_with("bob", BOB_PASSWORD, "options='-c intervalstyle=iso_8601'")
        .await;
    let style = bob.simple_query("SHOW intervalstyle").await.unwrap();
    assert_eq!(first_value(&style), "iso_8601");
    // The session's role is the gateway's credential, not the one asked for.
    let user = bob.simple_query("SELECT current_user").await.unwrap();
    assert_eq!(first_value(&user), "app");
}

/// `log_statement` is a superuser setting: a session must not take itself out of the server log.
/// `SET log_statement` needs a grant of `set` on it, and a startup parameter is decided as that SET.
#[tokio::test(flavor = "multi_thread")]
async fn privileged_startup_settings_refuse_the_login() {
    let (_pg, gw) = start("state_startup_privileged").await;
    let (code, message) =
        refused_login(&gw, "bob", BOB_PASSWORD, "options='-c log_statement=none'").await;
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("startup parameter log_statement is not allowed"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// C. Names resolve as the server resolves them.

#[tokio::test(flavor = "multi_thread")]
async fn a_startup_search_path_resolves_unqualified_names() {
    let (_pg, gw) = start("state_path_startup").await;
    let bob = gw
        .connect_with("bob", BOB_PASSWORD, "options='-c search_path=hr'")
        .await;
    // hr.employees, as the server reads it: bob may not read it.
    let (code, message) = denial(bob.simple_query("SELECT note FROM employees").await);
    assert_eq!(code, "42501");
    assert!(message.contains("hr.employees"), "{message}");
    // What the qualified name gets, the unqualified one gets.
    let rows = bob
        .simple_query("SELECT note FROM public.employees")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), "public-row");
    // alice reads hr's row, and the audit log names hr.employees.
    let alice = gw
        .connect_with("alice", ALICE_PASSWORD, "options='-c search_path=hr'")
        .await;
    let rows = alice
        .simple_query("SELECT note FROM employees")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), "hr-row");
    assert_eq!(
        objects_of(&gw, "SELECT note FROM employees"),
        vec!["hr.employees"]
    );
    // RESET returns to the login value, not to a default the gateway assumes.
    alice
        .simple_query("SET search_path = public")
        .await
        .unwrap();
    alice.simple_query("RESET search_path").await.unwrap();
    let rows = alice
        .simple_query("SELECT note AS after_reset FROM employees")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), "hr-row");
    assert_eq!(
        objects_of(&gw, "SELECT note AS after_reset FROM employees"),
        vec!["hr.employees"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_default_search_path_is_honoured_and_the_upstream_role_is_not_named() {
    let (pg, gw) = start("state_path_role").await;
    pg.psql(
        "state_path_role",
        "ALTER ROLE app IN DATABASE state_path_role SET search_path = hr",
    )
    .unwrap();
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let (code, message) = denial(bob.simple_query("SELECT note FROM employees").await);
    assert_eq!(code, "42501");
    assert!(message.contains("hr.employees"), "{message}");
    // A name found nowhere, through a path of `$user` only: the upstream role is not spelled out.
    let bob = gw
        .connect_with("bob", BOB_PASSWORD, "options='-c search_path=$user'")
        .await;
    let (code, message) = denial(bob.simple_query("SELECT * FROM nosuch_t").await);
    assert_eq!(code, "42501");
    assert!(!message.contains("app.nosuch_t"), "{message}");
    assert!(message.contains("nosuch_t"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_ends_undo_search_path_changes_as_the_server_does() {
    let (_pg, gw) = start("state_path_txn").await;
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    let read = |tag: &'static str| format!("SELECT note AS {tag} FROM employees");
    // SET in a transaction block, undone by ROLLBACK.
    alice.simple_query("BEGIN").await.unwrap();
    alice.simple_query("SET search_path = hr").await.unwrap();
    let rows = alice.simple_query(&read("in_txn")).await.unwrap();
    assert_eq!(first_value(&rows), "hr-row");
    assert_eq!(objects_of(&gw, &read("in_txn")), vec!["hr.employees"]);
    alice.simple_query("ROLLBACK").await.unwrap();
    let rows = alice.simple_query(&read("rolled_back")).await.unwrap();
    assert_eq!(first_value(&rows), "public-row");
    assert_eq!(
        objects_of(&gw, &read("rolled_back")),
        vec!["public.employees"]
    );
    // ... and by ROLLBACK TO SAVEPOINT for a SET made after the savepoint.
    alice.simple_query("BEGIN; SAVEPOINT s").await.unwrap();
    alice.simple_query("SET search_path = hr").await.unwrap();
    alice.simple_query("ROLLBACK TO SAVEPOINT s").await.unwrap();
    let rows = alice.simple_query(&read("to_savepoint")).await.unwrap();
    assert_eq!(first_value(&rows), "public-row");
    assert_eq!(
        objects_of(&gw, &read("to_savepoint")),
        vec!["public.employees"]
    );
    alice.simple_query("COMMIT").await.unwrap();
    // SET LOCAL lasts to the transaction's end.
    alice
        .simple_query("BEGIN; SET LOCAL search_path = hr")
        .await
        .unwrap();
    let rows = alice.simple_query(&read("local")).await.unwrap();
    assert_eq!(first_value(&rows), "hr-row");
    alice.simple_query("COMMIT").await.unwrap();
    let rows = alice.simple_query(&read("after_commit")).await.unwrap();
    assert_eq!(first_value(&rows), "public-row");
    assert_eq!(
        objects_of(&gw, &read("after_commit")),
        vec!["public.employees"]
    );
    // DISCARD ALL returns to the login value too.
    alice.simple_query("SET search_path = hr").await.unwrap();
    alice.simple_query("DISCARD ALL").await.unwrap();
    let rows = alice.simple_query(&read("discarded")).await.unwrap();
    assert_eq!(first_value(&rows), "public-row");
    // In one message, the path after the transaction's end is not known before it runs: refused.
    let (code, message) = denial(
        alice
            .simple_query("BEGIN; SET search_path = hr; ROLLBACK; SELECT note FROM employees")
            .await,
    );
    assert_eq!(code, "0A000", "{message}");
    // A change committed before the transaction began is not undone by its end: nothing is refused.
    alice.simple_query("SET search_path = hr").await.unwrap();
    let messages = alice
        .simple_query("BEGIN; SELECT 1; COMMIT; SELECT note AS committed FROM employees")
        .await
        .unwrap();
    let last = messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(last.as_deref(), Some("hr-row"));
    assert_eq!(
        objects_of(&gw, "SELECT note AS committed FROM employees"),
        vec!["hr.employees"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipelined_statement_waits_for_the_search_path_the_server_has() {
    let (_pg, gw) = start("state_path_pipeline").await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    // Both are sent before either answer arrives.
    let (set, read) = tokio::join!(
        bob.simple_query("SET search_path = hr"),
        bob.simple_query("SELECT note AS piped FROM employees"),
    );
    set.unwrap();
    let (code, message) = denial(read);
    assert_eq!(code, "42501");
    assert!(message.contains("hr.employees"), "{message}");
    // The extended protocol: the path a SET gives is known once its cycle ends.
    bob.simple_query("RESET search_path").await.unwrap();
    let set = bob.prepare("SET search_path = hr").await.unwrap();
    let (done, read) = tokio::join!(
        bob.execute(&set, &[]),
        bob.query("SELECT note FROM employees", &[])
    );
    done.unwrap();
    let err = read.expect_err("hr.employees is not bob's");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_path_change_next_to_a_copy_is_learnt_before_the_next_query() {
    let db = "state_path_copy";
    let (_pg, gw) = start(db).await;
    // One message with SET and COPY: the gateway cannot ask the server mid-COPY.
    let script = "SET search_path = hr\\; COPY hr.employees FROM STDIN;\n2\tcopied\n\\.\n\
                  SELECT count(*) AS after_copy FROM employees;\n";
    let (out, errors) = psql_raw(
        gw.pg_env("alice", ALICE_PASSWORD),
        "UTF8",
        script.as_bytes(),
    );
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(out.lines().last(), Some("2"), "{out} {errors}");
    let objects = objects_of(&gw, "SELECT count(*) AS after_copy FROM employees");
    assert!(objects.contains(&"hr.employees".to_string()), "{objects:?}");
}

// ---------------------------------------------------------------------------------------------
// B. The text is read as the server reads it.

/// Runs `script` (bytes in `encoding`) with psql, through the gateway as bob or directly as the
/// upstream role; stdout bytes and stderr.
fn psql_raw(env: Vec<(String, String)>, encoding: &str, script: &[u8]) -> (Vec<u8>, String) {
    let mut child = Command::new("psql")
        .args(["-X", "-At", "-f", "-"])
        .envs(env)
        .env("PGCLIENTENCODING", encoding)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script)
        .expect("write script");
    let out = child.wait_with_output().expect("wait for psql");
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn direct_env(pg: &PgServer, db: &str) -> Vec<(String, String)> {
    vec![
        ("PGHOST".into(), pg.host().into()),
        ("PGPORT".into(), pg.port().to_string()),
        ("PGUSER".into(), APP_USER.into()),
        ("PGPASSWORD".into(), APP_PASSWORD.into()),
        ("PGDATABASE".into(), db.into()),
        ("PGSSLMODE".into(), "disable".into()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_conforming_strings_off_cannot_hide_a_subquery() {
    let db = "state_scs";
    let (pg, gw) = start(db).await;
    // The `;` on a line of its own: with the setting off, the `--` starts a comment to the server.
    let leak = "SELECT 'a\\' AS c1, ' , (SELECT s FROM public.secret_t) AS leaked --'\n;\n";
    let escaped = "SELECT E'x\\\\y' AS c, note FROM public.employees;\n";
    for scs in ["on", "off"] {
        let script = format!("SET standard_conforming_strings = {scs};\n{leak}{escaped}");
        let (direct, _) = psql_raw(direct_env(pg, db), "UTF8", script.as_bytes());
        let (through, errors) = psql_raw(gw.pg_env("bob", BOB_PASSWORD), "UTF8", script.as_bytes());
        let direct = String::from_utf8_lossy(&direct).into_owned();
        let through = String::from_utf8_lossy(&through).into_owned();
        // The server reads the subquery only with the setting off; the gateway never lets it run.
        assert_eq!(direct.contains("TOPSECRET"), scs == "off", "{direct}");
        assert!(!through.contains("TOPSECRET"), "{through}");
        // What is allowed reads the same both ways.
        assert!(
            through.contains("x\\y|public-row"),
            "{scs}: {through} {errors}"
        );
        if scs == "on" {
            assert_eq!(through, direct, "{errors}");
        } else {
            assert!(
                errors.contains("standard_conforming_strings is off"),
                "{errors}"
            );
        }
    }
}

/// A function may change standard_conforming_strings without any statement saying so; a statement
/// pipelined behind it was read the old way, so its results never reach the client.
#[tokio::test(flavor = "multi_thread")]
async fn a_setting_changed_by_a_function_stops_what_was_read_the_old_way() {
    let (_pg, gw) = start("state_scs_function").await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let leak = "SELECT 'a\\' AS c1, ' , (SELECT s FROM public.secret_t) AS leaked --'";
    let (_, read) = tokio::join!(
        bob.simple_query("SELECT public.scs_off()"),
        bob.simple_query(leak)
    );
    if let Ok(messages) = read {
        let rows: Vec<String> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(format!("{:?}", row.get(1))),
                _ => None,
            })
            .collect();
        assert!(!rows.iter().any(|r| r.contains("TOPSECRET")), "{rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_are_read_in_the_client_encoding() {
    let db = "state_encoding";
    let (pg, gw) = start(db).await;
    // A character whose last byte is a backslash, in each multi-byte encoding; é/€ in the others.
    let cases: [(&str, &[u8]); 5] = [
        ("UTF8", "é€".as_bytes()),
        ("LATIN9", b"\xe9\xa4"),
        ("GBK", b"\xbf\x5c"),
        ("SJIS", b"\x83\x5c"),
        ("BIG5", b"\xa4\x5c"),
    ];
    for (encoding, character) in cases {
        // To the server, E'<character>' ends at its quote and a subquery follows; read byte by byte,
        // the backslash would escape the quote and the rest would be one literal.
        let mut leak = b"SELECT E'".to_vec();
        leak.extend_from_slice(character);
        leak.extend_from_slice(b"' AS c1, (SELECT s FROM public.secret_t) AS leaked -- '\n;\n");
        let mut allowed = b"SELECT E'".to_vec();
        allowed.extend_from_slice(character);
        allowed.extend_from_slice(b"' AS c1, (SELECT note FROM public.employees) AS n -- '\n;\n");
        let (direct, direct_errors) = psql_raw(direct_env(pg, db), encoding, &leak);
        let (through, errors) = psql_raw(gw.pg_env("bob", BOB_PASSWORD), encoding, &leak);
        assert!(
            String::from_utf8_lossy(&direct).contains("TOPSECRET"),
            "{encoding}: the server reads a subquery: {direct_errors}"
        );
        assert!(
            !String::from_utf8_lossy(&through).contains("TOPSECRET"),
            "{encoding}"
        );
        assert!(
            errors.contains("secret_t"),
            "{encoding}: the gateway reads the subquery too: {errors}"
        );
        let (direct, _) = psql_raw(direct_env(pg, db), encoding, &allowed);
        let (through, errors) = psql_raw(gw.pg_env("bob", BOB_PASSWORD), encoding, &allowed);
        assert!(!direct.is_empty(), "{encoding}");
        assert_eq!(through, direct, "{encoding}: {errors}");
    }
    // An encoding the gateway cannot read: ASCII still works, other bytes are refused with a reason.
    let (through, errors) = psql_raw(
        gw.pg_env("bob", BOB_PASSWORD),
        "EUC_TW",
        b"SELECT note FROM public.employees;\nSELECT '\xa4\xa1' AS c;\n",
    );
    assert!(String::from_utf8_lossy(&through).contains("public-row"));
    assert!(errors.contains("cannot read non-ASCII text"), "{errors}");
    // A statement rewritten for a mask goes back in the client's encoding.
    gw.apply_policy_live(&format!(
        "{POLICY}masks:\n  - {{id: mask-note, resource: app, columns: [public.employees.note], \
         mask: {{kind: full}}}}\n"
    ));
    let masked = b"SELECT note, '\xe9\xa4' AS x FROM public.employees;\n";
    let (direct, _) = psql_raw(direct_env(pg, db), "LATIN9", masked);
    let (through, errors) = psql_raw(gw.pg_env("bob", BOB_PASSWORD), "LATIN9", masked);
    assert!(direct.ends_with(b"public-row|\xe9\xa4\n"), "{direct:?}");
    assert!(through.ends_with(b"|\xe9\xa4\n"), "{through:?} {errors}");
    assert!(
        !String::from_utf8_lossy(&through).contains("public-row"),
        "{through:?}"
    );
    // The search path the server reports comes back in the client encoding too: a schema named in
    // LATIN9 is the one unqualified names resolve to, not one with the same name misread.
    let alice = gw.connect("alice", ALICE_PASSWORD).await;
    alice
        .batch_execute(
            "CREATE SCHEMA \"caf\u{e9}\"; CREATE TABLE \"caf\u{e9}\".employees(id int, note text)",
        )
        .await
        .unwrap();
    // Masks apply to alice too: the table is read (and written) once the catalog shows it.
    alice
        .batch_execute("INSERT INTO \"caf\u{e9}\".employees VALUES (1, 'cafe-row')")
        .await
        .unwrap();
    let switched = b"SET search_path = \"caf\xe9\", public;\nSELECT note FROM employees;\n";
    let (direct, _) = psql_raw(direct_env(pg, db), "LATIN9", switched);
    let (through, errors) = psql_raw(gw.pg_env("bob", BOB_PASSWORD), "LATIN9", switched);
    assert!(
        String::from_utf8_lossy(&direct).contains("cafe-row"),
        "{direct:?}"
    );
    assert!(
        !String::from_utf8_lossy(&through).contains("row"),
        "{through:?}"
    );
    assert!(errors.contains("employees"), "{through:?} {errors}");
}

/// `set_config` with its setting name as a parameter (drivers do this) is decided at each execution on
/// the name bound: an ordinary setting runs, a privileged one needs a grant, an identity is refused.
#[tokio::test(flavor = "multi_thread")]
async fn set_config_is_decided_on_the_bound_setting_name() {
    let (_pg, gw) = start("state_bound_setting").await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let sql = "SELECT set_config($1, $2, false)";
    let rows = bob
        .query(sql, &[&"application_name", &"bound-name"])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "bound-name");
    let shown = bob.simple_query("SHOW application_name").await.unwrap();
    assert_eq!(first_value(&shown), "bound-name");

    let (code, message) = denial(bob.query(sql, &[&"log_statement", &"none"]).await);
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("log_statement"), "{message}");
    let (code, message) = denial(bob.query(sql, &[&"role", &"postgres"]).await);
    assert_eq!(code, "0A000", "{message}");
    let who = bob.simple_query("SELECT current_user").await.unwrap();
    assert_ne!(first_value(&who), "postgres");
}

/// A function may change the search path in its body, where the statement's text does not show it: the
/// gateway asks the server after any call of a function that is not a known built-in.
#[tokio::test(flavor = "multi_thread")]
async fn a_search_path_changed_inside_a_function_is_learnt_from_the_server() {
    let (_pg, gw) = start("state_path_function").await;
    let bob = gw.connect("bob", BOB_PASSWORD).await;
    let rows = bob
        .simple_query("SELECT note FROM employees")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), "public-row");
    bob.simple_query("SELECT public.to_hr()").await.unwrap();
    let (code, message) = denial(bob.simple_query("SELECT note FROM employees").await);
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("hr.employees"), "{message}");
}
