//! A tiny MaxMind DB writer, for tests only: no real database can be downloaded here, so tests build
//! one with the exact layout of the format (<https://maxmind.github.io/MaxMind-DB/>) and read it back
//! with the real `maxminddb` reader.
//!
//! Layout: a binary search tree over the 128 address bits (24-bit records, IPv4 under `::/96`), 16
//! zero bytes, the data section, then `\xAB\xCD\xEFMaxMind.com` and the metadata map.

use std::net::IpAddr;

/// A value in the data section (only the types the tests need).
pub enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

/// Builds a database from networks and their records.
pub struct MmdbWriter {
    database_type: String,
    /// Each node's two children.
    nodes: Vec<[Child; 2]>,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Child {
    Empty,
    Node(usize),
    Data(usize),
}

impl MmdbWriter {
    /// An empty IPv6 database (IPv4 addresses live under `::/96`, as in GeoLite2).
    pub fn new(database_type: &str) -> MmdbWriter {
        MmdbWriter {
            database_type: database_type.to_string(),
            nodes: vec![[Child::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// Adds a network with the GeoIP2 shape `{country: {iso_code, names: {en}}}`.
    pub fn country(&mut self, cidr: &str, iso_code: &str) -> &mut Self {
        let record = Value::Map(vec![(
            "country".into(),
            Value::Map(vec![
                ("iso_code".into(), Value::Str(iso_code.into())),
                (
                    "names".into(),
                    Value::Map(vec![("en".into(), Value::Str(format!("Land {iso_code}")))]),
                ),
            ]),
        )]);
        self.insert(cidr, record)
    }

    /// Adds a network with any record. Networks must not nest (enough for tests).
    pub fn insert(&mut self, cidr: &str, record: Value) -> &mut Self {
        let (addr, prefix) = cidr.split_once('/').expect("cidr with a prefix");
        let addr: IpAddr = addr.parse().expect("an address");
        let prefix: u32 = prefix.parse().expect("a prefix length");
        let (bits, prefix) = match addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), prefix + 96),
            IpAddr::V6(v6) => (u128::from(v6), prefix),
        };
        let offset = self.data.len();
        encode(&record, &mut self.data);
        let mut node = 0;
        for depth in 0..prefix {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == prefix {
                self.nodes[node][bit] = Child::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Child::Node(next) => next,
                Child::Empty => {
                    self.nodes.push([Child::Empty; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Child::Node(next);
                    next
                }
                Child::Data(_) => panic!("networks must not nest in this test writer"),
            };
        }
        self
    }

    /// The database file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let count = self.nodes.len();
        let record = |c: Child| -> u32 {
            let v = match c {
                Child::Empty => count,
                Child::Node(n) => n,
                // Data pointers count from the end of the tree, past the 16-byte separator.
                Child::Data(off) => count + 16 + off,
            };
            u32::try_from(v)
                .ok()
                .filter(|v| *v < 1 << 24)
                .expect("fits 24 bits")
        };
        let mut out = Vec::new();
        for [left, right] in &self.nodes {
            out.extend_from_slice(&record(*left).to_be_bytes()[1..]);
            out.extend_from_slice(&record(*right).to_be_bytes()[1..]);
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = Value::Map(vec![
            ("binary_format_major_version".into(), Value::U16(2)),
            ("binary_format_minor_version".into(), Value::U16(0)),
            ("build_epoch".into(), Value::U64(1_700_000_000)),
            (
                "database_type".into(),
                Value::Str(self.database_type.clone()),
            ),
            (
                "description".into(),
                Value::Map(vec![("en".into(), Value::Str("test".into()))]),
            ),
            ("ip_version".into(), Value::U16(6)),
            (
                "languages".into(),
                Value::Array(vec![Value::Str("en".into())]),
            ),
            ("node_count".into(), Value::U32(count as u32)),
            ("record_size".into(), Value::U16(24)),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

/// Type numbers from the spec; 1–7 fit the control byte, larger ones are "extended" (stored as n - 7
/// in the byte after it).
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => uint(5, u64::from(*n), out),
        Value::U32(n) => uint(6, u64::from(*n), out),
        Value::U64(n) => uint(9, *n, out),
        Value::Map(pairs) => {
            control(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&Value::Str(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for v in items {
                encode(v, out);
            }
        }
    }
}

/// Unsigned integers are big-endian with leading zero bytes dropped; the size is the byte count.
fn uint(kind: u8, n: u64, out: &mut Vec<u8>) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(kind, 8 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if kind <= 7 {
        out.push((kind << 5) | size_bits);
    } else {
        out.push(size_bits);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}
