//! Where a client is: the country of its address, for policies that filter on `locations`.
//!
//! Two sources, asked in order: the configured `networks` (CIDR → country, for private ranges no public
//! database knows; the longest matching prefix wins), then a MaxMind-format country database (`.mmdb`,
//! e.g. GeoLite2-Country). An address neither knows is [`Observed::Unknown`], which policies can match.
//!
//! Everything is validated when the [`Locator`] is loaded, so a bad entry stops the gateway at start-up
//! with a message naming it instead of silently locating nobody.

mod cidr;
#[cfg(test)]
mod mmdb_writer;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_policy::{Cidr, Observed};
use serde::Deserialize;

/// The `location` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// A MaxMind-format country (or city) database, e.g. `/var/lib/GeoIP/GeoLite2-Country.mmdb`.
    pub database: Option<PathBuf>,
    /// Address ranges with a fixed country, consulted before the database.
    #[serde(default)]
    pub networks: Vec<NetworkEntry>,
}

/// One `networks` entry: every address in `cidr` is in `country`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    /// An address range such as `10.0.0.0/8`, `192.0.2.7` or `fd00::/8`.
    pub cidr: String,
    /// An ISO 3166-1 alpha-2 country code such as `DE` (any case).
    pub country: String,
}

/// Why a location configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// A `networks` entry has an address range that does not parse.
    #[error("location.networks[{index}]: {reason}")]
    BadCidr {
        /// Position of the entry in the list, from 0.
        index: usize,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// A `networks` entry has a country that is not two letters.
    #[error(
        "location.networks[{index}]: country `{country}` is not a two-letter ISO 3166 code such as `DE`"
    )]
    BadCountry {
        /// Position of the entry in the list, from 0.
        index: usize,
        /// The country as written.
        country: String,
    },
    /// The same range is listed twice.
    #[error("location.networks[{index}]: `{cidr}` is already listed at networks[{first}]")]
    Duplicate {
        /// Position of the repeated entry.
        index: usize,
        /// Position of the first entry with that range.
        first: usize,
        /// The range.
        cidr: String,
    },
    /// The database file cannot be read.
    #[error("location.database: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a MaxMind DB.
    #[error("location.database: {} is not a MaxMind DB (.mmdb) file: {reason}", path.display())]
    NotMaxMind {
        /// The configured path.
        path: PathBuf,
        /// What the reader found wrong.
        reason: String,
    },
    /// The file is a MaxMind DB without countries (an ASN database, say).
    #[error(
        "location.database: {} is a `{database_type}` database, which has no countries; \
         use a country or city database such as GeoLite2-Country",
        path.display()
    )]
    NotCountry {
        /// The configured path.
        path: PathBuf,
        /// The database type from its metadata.
        database_type: String,
    },
}

/// Finds the country of a client address. Cheap to clone and to share between connections.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// Sorted by prefix length, longest first, so the first match is the most specific.
    networks: Arc<[(Cidr, String)]>,
    database: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
}

impl Locator {
    /// A locator that knows nothing: every address is [`Observed::Unknown`].
    pub fn none() -> Locator {
        Locator::default()
    }

    /// Validates the configuration and opens the database (read into memory once, so lookups never
    /// touch the disk).
    pub fn load(config: &LocationConfig) -> Result<Locator, LocationError> {
        let networks = load_networks(&config.networks)?;
        let database = match &config.database {
            Some(path) => Some(Arc::new(open_database(path)?)),
            None => None,
        };
        Ok(Locator {
            networks: networks.into(),
            database,
        })
    }

    /// The country of `addr` (upper-case alpha-2), or unknown when there is no address or no source
    /// knows it.
    pub fn locate(&self, addr: Option<IpAddr>) -> Observed<String> {
        let Some(addr) = addr.map(cidr::canonical) else {
            return Observed::Unknown;
        };
        if let Some((_, country)) = self.networks.iter().find(|(c, _)| c.contains(addr)) {
            return Observed::Known(country.clone());
        }
        match self.database.as_deref().map(|db| lookup(db, addr)) {
            Some(Some(country)) => Observed::Known(country),
            _ => Observed::Unknown,
        }
    }
}

fn load_networks(entries: &[NetworkEntry]) -> Result<Vec<(Cidr, String)>, LocationError> {
    let mut networks: Vec<(Cidr, String)> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let range =
            cidr::parse(&entry.cidr).map_err(|reason| LocationError::BadCidr { index, reason })?;
        let country = entry.country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(LocationError::BadCountry {
                index,
                country: entry.country.clone(),
            });
        }
        if let Some(first) = networks.iter().position(|(c, _)| *c == range) {
            return Err(LocationError::Duplicate {
                index,
                first,
                cidr: entry.cidr.clone(),
            });
        }
        networks.push((range, country.to_ascii_uppercase()));
    }
    // Stable, so equal prefixes keep file order (they cannot overlap unless equal, which is refused).
    networks.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix));
    Ok(networks)
}

fn open_database(path: &Path) -> Result<maxminddb::Reader<Vec<u8>>, LocationError> {
    let bytes = std::fs::read(path).map_err(|source| LocationError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = maxminddb::Reader::from_source(bytes).map_err(|e| LocationError::NotMaxMind {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // GeoIP2/GeoLite2 Country, City and Enterprise (and DB-IP's look-alikes) all carry
    // `country.iso_code`; an ASN or ISP database would locate every client as unknown.
    let database_type = reader.metadata().database_type.clone();
    let lower = database_type.to_ascii_lowercase();
    if !["country", "city", "enterprise"]
        .iter()
        .any(|k| lower.contains(k))
    {
        return Err(LocationError::NotCountry {
            path: path.to_path_buf(),
            database_type,
        });
    }
    tracing::info!(path = %path.display(), %database_type, "opened the location database");
    Ok(reader)
}

fn lookup(db: &maxminddb::Reader<Vec<u8>>, addr: IpAddr) -> Option<String> {
    use maxminddb::PathElement::Key;
    let found = db.lookup(addr).and_then(|r| {
        // Some ranges (anycast, satellite) have only the country they are registered in.
        match r.decode_path::<String>(&[Key("country"), Key("iso_code")])? {
            Some(country) => Ok(Some(country)),
            None => r.decode_path::<String>(&[Key("registered_country"), Key("iso_code")]),
        }
    });
    match found {
        Ok(country) => country.map(|c| c.to_ascii_uppercase()),
        Err(e) => {
            // An IPv6 address in an IPv4-only database lands here too: unknown, not an outage.
            tracing::debug!(%addr, error = %e, "location database lookup failed");
            None
        }
    }
}
