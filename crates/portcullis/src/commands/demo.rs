//! `portcullis demo`: everything a newcomer needs to see the gateway work, with no database at hand:
//! the gateway, and the HTTP API with the web portal beside it.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use portcullis_api::ApiConfig;
use portcullis_store::{ResourceSpec, Secret, StoreError, TlsMode};
use portcullis_testkit::PgServer;

use super::serve;
use crate::settings::Settings;

const DEMO_RESOURCE: &str = "demo";
const DEMO_USER: &str = "alice";
const DEMO_PASSWORD: &str = "alice-demo";
const ANALYST_USER: &str = "bob";
const ANALYST_PASSWORD: &str = "bob-demo";
const ANALYST_ROLE: &str = "analysts";
/// The portal's administrator: a member of the API's first admin role.
const ADMIN_USER: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-demo";
/// The example policy: alice may do anything on the demo, analysts may read hr.*.
const DEMO_POLICY: &str = include_str!("../../../../examples/policy.yaml");

/// Sample data: a small HR schema and a sales table.
const SAMPLE_SQL: &str = "
CREATE SCHEMA hr;
CREATE TABLE hr.departments (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE hr.employees (id int PRIMARY KEY, name text NOT NULL, email text, ssn text,
                           salary numeric(10,2), department_id int REFERENCES hr.departments);
INSERT INTO hr.departments VALUES (1, 'Engineering'), (2, 'Finance'), (3, 'Sales');
INSERT INTO hr.employees VALUES
  (1, 'Ada Lovelace', 'ada@example.com', '123-45-6789', 9100.00, 1),
  (2, 'Grace Hopper', 'grace@example.com', '987-65-4321', 9900.00, 1),
  (3, 'Luca Pacioli', 'luca@example.com', '555-12-3456', 7300.00, 2),
  (4, 'Mary Kay Ash', 'mary@example.com', '222-33-4444', 8100.00, 3);
CREATE TABLE public.orders (id serial PRIMARY KEY, customer text, amount numeric(10,2), placed_at timestamptz DEFAULT now());
INSERT INTO public.orders (customer, amount) SELECT 'customer ' || g, g * 10.5 FROM generate_series(1, 50) g;
GRANT USAGE ON SCHEMA hr TO app;
";

/// Re-running the demo on the same data directory finds what it made last time.
fn existing_is_fine(result: Result<(), StoreError>) -> Result<()> {
    match result {
        Ok(()) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Starts a throwaway PostgreSQL, loads sample data, registers it and serves the gateway on `listen`
/// and the API and portal on `api_listen` until interrupted.
pub fn run(
    settings: &Settings,
    data_dir: Option<&Path>,
    listen: SocketAddr,
    api_listen: SocketAddr,
) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("portcullis-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let data_dir = data_dir.unwrap_or(scratch.path()).to_path_buf();
    eprintln!("starting a throwaway PostgreSQL from the installed server binaries…");
    let pg = PgServer::start()
        .context("cannot start a throwaway PostgreSQL (is the postgresql package installed?)")?;
    pg.psql("appdb", SAMPLE_SQL)
        .context("cannot load the sample data")?;

    let store = settings.open_store(&data_dir)?;
    let resource = ResourceSpec {
        name: DEMO_RESOURCE.to_string(),
        host: pg.host().to_string(),
        port: pg.port(),
        database: "appdb".to_string(),
        tls: TlsMode::Prefer,
        username: "app".to_string(),
        password: Secret::new("app-secret".to_string()),
    };
    match store.add_resource(&resource) {
        Ok(()) => {}
        // A reused data directory keeps the old resource: point its credential and address at this server.
        Err(StoreError::AlreadyExists { .. }) => {
            store.remove_resource(DEMO_RESOURCE)?;
            store.add_resource(&resource)?;
        }
        Err(e) => return Err(e.into()),
    }
    for (user, password) in [(DEMO_USER, DEMO_PASSWORD), (ANALYST_USER, ANALYST_PASSWORD)] {
        existing_is_fine(store.add_user(user, password))?;
    }
    existing_is_fine(store.add_role(ANALYST_ROLE))?;
    existing_is_fine(store.grant_role(ANALYST_USER, ANALYST_ROLE))?;
    store.apply_policy("examples/policy.yaml", DEMO_POLICY, "demo")?;
    // The settings' `api:` section when there is one, the defaults otherwise; the address is the flag's.
    let mut api_config = settings
        .api_config()?
        .map_or_else(ApiConfig::default, |(_, config)| config);
    // A newcomer has no authenticator app set up for the demo's users: the portal takes passwords
    // alone here. Users enrolled in MFA still give their code; `portcullis serve` keeps requiring it.
    api_config.require_mfa = false;
    let admin_role = api_config
        .admin_roles
        .first()
        .cloned()
        .unwrap_or_else(|| "portcullis-admin".to_owned());
    existing_is_fine(store.add_user(ADMIN_USER, ADMIN_PASSWORD))?;
    existing_is_fine(store.add_role(&admin_role))?;
    existing_is_fine(store.grant_role(ADMIN_USER, &admin_role))?;
    let portal = format!("http://{api_listen}/web");
    let mut config = settings.gateway_config(Some(listen), &data_dir)?;
    // MFA notices name the portal's page, where a held statement is verified.
    if config.mfa_verify_url.is_none() {
        config.mfa_verify_url = Some(format!("{portal}/mfa"));
    }
    let api = serve::Api {
        listen: api_listen,
        config: api_config,
        tls: None,
        clock: settings.clock(),
    };
    let shown_dir = data_dir.display().to_string();
    serve::runtime()?.block_on(serve::serve(config, store, Some(api), move |addr| {
        println!();
        println!("Portcullis demo is running: a throwaway PostgreSQL with sample data behind the gateway.");
        println!();
        println!("  connect:   psql \"host={} port={} dbname={DEMO_RESOURCE} user={DEMO_USER} password={DEMO_PASSWORD}\"", addr.ip(), addr.port());
        println!("  then try:  SELECT e.name, d.name FROM hr.employees e JOIN hr.departments d ON d.id = e.department_id;");
        println!("             DELETE FROM hr.employees;            -- refused by rule no_hr_deletes");
        println!("             DO $$ BEGIN PERFORM 1; END $$;      -- refused: dynamic SQL cannot be analysed");
        println!("  analyst:   psql \"host={} port={} dbname={DEMO_RESOURCE} user={ANALYST_USER} password={ANALYST_PASSWORD}\"", addr.ip(), addr.port());
        println!("             may read hr.*, nothing else: SELECT * FROM orders; is refused");
        println!("  audit log: portcullis --data-dir {shown_dir} audit");
        println!("  decisions: portcullis --data-dir {shown_dir} monitor");
        println!("  policy:    portcullis --data-dir {shown_dir} policy show   (edit, then policy apply -f FILE)");
        println!("  portal:    {portal}   sign in as {ADMIN_USER} / {ADMIN_PASSWORD} (administrator), or as {DEMO_USER} / {DEMO_PASSWORD}");
        println!("             Policy → Explain a statement: user {ANALYST_USER}, resource {DEMO_RESOURCE}, DELETE FROM hr.employees");
        println!("             Audit: the statements above, top users and objects, session replay");
        println!();
        println!("Ctrl-C stops the gateway, the portal and the throwaway PostgreSQL.");
    }))?;
    drop(pg);
    Ok(())
}
