use std::net::IpAddr;
use std::path::PathBuf;

use portcullis_policy::Observed;

use super::mmdb_writer::{MmdbWriter, Value};
use super::{LocationConfig, LocationError, Locator, NetworkEntry};

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn known(c: &str) -> Observed<String> {
    Observed::Known(c.to_string())
}

fn networks(entries: &[(&str, &str)]) -> LocationConfig {
    LocationConfig {
        database: None,
        networks: entries
            .iter()
            .map(|(cidr, country)| NetworkEntry {
                cidr: cidr.to_string(),
                country: country.to_string(),
            })
            .collect(),
    }
}

fn load_err(config: &LocationConfig) -> String {
    match Locator::load(config) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Writes `bytes` to a temporary `.mmdb` file and returns a config pointing at it.
fn with_database(bytes: &[u8], extra: &[(&str, &str)]) -> (tempfile::TempDir, LocationConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.mmdb");
    std::fs::write(&path, bytes).unwrap();
    let mut config = networks(extra);
    config.database = Some(path);
    (dir, config)
}

fn country_db() -> Vec<u8> {
    MmdbWriter::new("GeoLite2-Country")
        .country("81.2.69.0/24", "GB")
        .country("10.0.0.0/8", "US")
        .country("2001:db8::/32", "se")
        .insert(
            "198.51.100.0/24",
            Value::Map(vec![(
                "registered_country".into(),
                Value::Map(vec![("iso_code".into(), Value::Str("JP".into()))]),
            )]),
        )
        .build()
}

#[test]
fn nothing_configured_locates_nobody() {
    let none = Locator::none();
    assert_eq!(none.locate(ip("81.2.69.160")), Observed::Unknown);
    assert_eq!(none.locate(None), Observed::Unknown);
    let empty = Locator::load(&LocationConfig::default()).unwrap();
    assert_eq!(empty.locate(ip("10.1.2.3")), Observed::Unknown);
}

#[test]
fn networks_match_by_longest_prefix_whatever_their_order() {
    let l = Locator::load(&networks(&[
        ("10.0.0.0/8", "de"),
        ("10.1.0.0/16", "FR"),
        ("10.1.2.3", "IT"),
        ("fd00::/8", "CH"),
        ("0.0.0.0/0", "ZZ"),
    ]))
    .unwrap();
    assert_eq!(l.locate(ip("10.1.2.3")), known("IT"));
    assert_eq!(l.locate(ip("10.1.2.4")), known("FR"));
    assert_eq!(l.locate(ip("10.2.0.1")), known("DE"), "upper-cased");
    assert_eq!(l.locate(ip("192.0.2.1")), known("ZZ"));
    assert_eq!(l.locate(ip("fd12::1")), known("CH"));
    assert_eq!(l.locate(ip("2001:db8::1")), Observed::Unknown);
    assert_eq!(l.locate(None), Observed::Unknown);
}

#[test]
fn ipv4_mapped_ipv6_addresses_are_located_as_ipv4() {
    let l = Locator::load(&networks(&[
        ("10.0.0.0/8", "DE"),
        // Written in mapped form in the file: still an IPv4 range.
        ("::ffff:192.168.0.0/112", "AT"),
    ]))
    .unwrap();
    assert_eq!(l.locate(ip("::ffff:10.9.8.7")), known("DE"));
    assert_eq!(l.locate(ip("192.168.3.4")), known("AT"));
    assert_eq!(l.locate(ip("::ffff:192.168.3.4")), known("AT"));
}

#[test]
fn bad_network_entries_are_refused_with_the_entry_named() {
    let e = load_err(&networks(&[("10.0.0.0/8", "DE"), ("10.0.0/8", "DE")]));
    assert!(e.contains("networks[1]") && e.contains("`10.0.0/8`"), "{e}");
    let e = load_err(&networks(&[("10.0.0.0/33", "DE")]));
    assert!(e.contains("not an address range"), "{e}");
    let e = load_err(&networks(&[("10.1.2.3/8", "DE")]));
    assert!(e.contains("did you mean `10.0.0.0/8`"), "{e}");
    let e = load_err(&networks(&[("10.0.0.0/8", "DEU")]));
    assert!(e.contains("`DEU` is not a two-letter"), "{e}");
    let e = load_err(&networks(&[("10.0.0.0/8", "D1")]));
    assert!(e.contains("`D1`"), "{e}");
    let e = load_err(&networks(&[("10.0.0.0/8", "DE"), ("10.0.0.0/8", "FR")]));
    assert!(e.contains("already listed at networks[0]"), "{e}");
}

#[test]
fn the_test_writer_makes_a_database_the_real_reader_verifies() {
    let reader = maxminddb::Reader::from_source(country_db()).unwrap();
    reader.verify().unwrap();
    assert_eq!(reader.metadata().database_type, "GeoLite2-Country");
}

#[test]
fn a_country_database_locates_ipv4_ipv6_and_mapped_addresses() {
    let (_dir, config) = with_database(&country_db(), &[]);
    let l = Locator::load(&config).unwrap();
    assert_eq!(l.locate(ip("81.2.69.160")), known("GB"));
    assert_eq!(l.locate(ip("::ffff:81.2.69.1")), known("GB"));
    assert_eq!(l.locate(ip("2001:db8:1::7")), known("SE"), "upper-cased");
    assert_eq!(
        l.locate(ip("198.51.100.9")),
        known("JP"),
        "registered country"
    );
    assert_eq!(l.locate(ip("81.2.70.1")), Observed::Unknown);
    assert_eq!(l.locate(ip("2001:db9::1")), Observed::Unknown);
}

#[test]
fn configured_networks_win_over_the_database() {
    let (_dir, config) = with_database(&country_db(), &[("10.20.0.0/16", "DE")]);
    let l = Locator::load(&config).unwrap();
    assert_eq!(l.locate(ip("10.20.1.1")), known("DE"));
    assert_eq!(l.locate(ip("10.21.1.1")), known("US"), "the database");
}

#[test]
fn a_missing_database_is_a_clear_error() {
    let config = LocationConfig {
        database: Some(PathBuf::from("/nonexistent/GeoLite2-Country.mmdb")),
        networks: vec![],
    };
    let e = load_err(&config);
    assert!(
        e.contains("cannot read /nonexistent/GeoLite2-Country.mmdb"),
        "{e}"
    );
}

#[test]
fn a_corrupt_database_is_a_clear_error() {
    let (_dir, config) = with_database(b"this is not a database", &[]);
    let e = load_err(&config);
    assert!(e.contains("is not a MaxMind DB (.mmdb) file"), "{e}");

    // A real file cut short loses its metadata marker.
    let db = country_db();
    let (_dir, config) = with_database(&db[..db.len() / 2], &[]);
    assert!(matches!(
        Locator::load(&config),
        Err(LocationError::NotMaxMind { .. })
    ));
}

#[test]
fn a_database_without_countries_is_refused() {
    let asn = MmdbWriter::new("GeoLite2-ASN")
        .insert(
            "81.2.69.0/24",
            Value::Map(vec![("autonomous_system_number".into(), Value::U32(20712))]),
        )
        .build();
    let (_dir, config) = with_database(&asn, &[]);
    let e = load_err(&config);
    assert!(
        e.contains("`GeoLite2-ASN` database, which has no countries"),
        "{e}"
    );
}

#[test]
fn the_configuration_section_parses_and_refuses_unknown_keys() {
    let config: LocationConfig = serde_yaml_ng::from_str(
        "database: /var/lib/GeoIP/GeoLite2-Country.mmdb\n\
         networks:\n  - {cidr: 10.0.0.0/8, country: DE}\n",
    )
    .unwrap();
    assert_eq!(config.networks.len(), 1);
    assert!(serde_yaml_ng::from_str::<LocationConfig>("databse: x\n").is_err());
    assert!(serde_yaml_ng::from_str::<LocationConfig>(
        "networks:\n  - {cidr: 10.0.0.0/8, contry: DE}\n"
    )
    .is_err());
}

#[test]
fn a_locator_can_be_shared_between_connections() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Locator>();
}
