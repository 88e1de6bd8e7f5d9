//! Decoding an event record's payload. The payload is the [`AuditEvent`] in MessagePack with field names:
//! a map whose first entry is the tag (`"type": "statement"`), the variant's fields after it. Serde's own
//! decoder for an internally tagged enum cannot know where the tag is, so it buffers the whole map as
//! `Content` values (an allocation per field) and decodes the variant from those; the index thread
//! paid that for every record. Here the tag is read first, and the rest of the map is decoded straight
//! into the variant's struct. A payload in any other shape (the tag not first) takes serde's way.

use serde::de::DeserializeOwned;

use super::event::AuditEvent;
use crate::error::StoreError;

/// Decodes an event record's payload.
pub fn decode_event(payload: &[u8]) -> Result<AuditEvent, StoreError> {
    if let Some(event) = decode_tag_first(payload) {
        return Ok(event);
    }
    rmp_serde::from_slice(payload)
        .map_err(|e| StoreError::Corrupt(format!("an audit journal record is not an event: {e}")))
}

/// The event, when `payload` is a map with the tag as its first entry and the variant's fields
/// decode; `None` sends the caller to serde's general path (which reports what is wrong).
fn decode_tag_first(payload: &[u8]) -> Option<AuditEvent> {
    let (entries, mut rest) = map_len(payload)?;
    let entries = entries.checked_sub(1)?;
    if read_str(&mut rest)? != b"type" {
        return None;
    }
    let tag = read_str(&mut rest)?;
    // The same map without its first entry: a new header, then the remaining entries as they are.
    let mut fields = Vec::with_capacity(rest.len() + 5);
    if entries < 16 {
        fields.push(0x80 | u8::try_from(entries).ok()?);
    } else if let Ok(n) = u16::try_from(entries) {
        fields.push(0xde);
        fields.extend_from_slice(&n.to_be_bytes());
    } else {
        fields.push(0xdf);
        fields.extend_from_slice(&entries.to_be_bytes());
    }
    fields.extend_from_slice(rest);
    fn variant<T: DeserializeOwned>(fields: &[u8]) -> Option<T> {
        rmp_serde::from_slice(fields).ok()
    }
    Some(match tag {
        b"statement" => AuditEvent::Statement(variant(&fields)?),
        b"connection" => AuditEvent::Connection(variant(&fields)?),
        b"decision" => AuditEvent::Decision(variant(&fields)?),
        b"workflow" => AuditEvent::Workflow(variant(&fields)?),
        b"mfa" => AuditEvent::Mfa(variant(&fields)?),
        _ => return None,
    })
}

/// A MessagePack map header: the number of entries and what follows it.
fn map_len(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    match first {
        0x80..=0x8f => Some((u32::from(first & 0x0f), rest)),
        0xde => Some((
            u32::from(u16::from_be_bytes(take(rest, 2)?.try_into().ok()?)),
            &rest[2..],
        )),
        0xdf => Some((
            u32::from_be_bytes(take(rest, 4)?.try_into().ok()?),
            &rest[4..],
        )),
        _ => None,
    }
}

/// A MessagePack string, advancing `bytes` past it.
fn read_str<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&first, rest) = bytes.split_first()?;
    let (len, rest) = match first {
        0xa0..=0xbf => (usize::from(first & 0x1f), rest),
        0xd9 => (usize::from(*rest.first()?), &rest[1..]),
        0xda => (
            usize::from(u16::from_be_bytes(take(rest, 2)?.try_into().ok()?)),
            &rest[2..],
        ),
        0xdb => (
            usize::try_from(u32::from_be_bytes(take(rest, 4)?.try_into().ok()?)).ok()?,
            &rest[4..],
        ),
        _ => return None,
    };
    let s = take(rest, len)?;
    *bytes = &rest[len..];
    Some(s)
}

fn take(bytes: &[u8], n: usize) -> Option<&[u8]> {
    bytes.get(..n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{
        AuditObject, ConnectionEvent, ConnectionPhase, MfaEvent, PolicyTrail, StatementEvent,
        WorkflowEvent,
    };

    fn encode(event: &AuditEvent) -> Vec<u8> {
        let mut out = Vec::new();
        rmp_serde::encode::write_named(&mut out, event).unwrap();
        out
    }

    fn events() -> Vec<AuditEvent> {
        let long = "x".repeat(70_000);
        vec![
            AuditEvent::Statement(StatementEvent {
                session_id: "s1".into(),
                at: 17,
                user: "alice".into(),
                resource: "prod".into(),
                client_addr: "127.0.0.1:5".into(),
                text: long.clone(),
                kind: "SELECT".into(),
                objects: vec![AuditObject {
                    name: "public.t".into(),
                    operation: "read".into(),
                }],
                param_count: 1,
                rows: Some(3),
                duration_us: 9,
                decision: "allow".into(),
                outcome: "ok".into(),
                sqlstate: None,
                message: Some("m".into()),
                policy: Some(PolicyTrail {
                    stage: "statement".into(),
                    roles: Some(vec!["r".into()]),
                    ..PolicyTrail::default()
                }),
            }),
            AuditEvent::Connection(ConnectionEvent {
                session_id: "s1".into(),
                phase: ConnectionPhase::Close,
                at: 1,
                user: "bob".into(),
                client_addr: "c".into(),
                resource: "r".into(),
                auth_result: "ok".into(),
                tls: true,
                application_name: None,
                bytes_in: u64::MAX,
                bytes_out: 0,
                detail: Some("d".into()),
            }),
            AuditEvent::Workflow(WorkflowEvent {
                session_id: String::new(),
                at: -4,
                user: "u".into(),
                resource: "r".into(),
                request_id: 7,
                action: "approved".into(),
                workflow: "w".into(),
                detail: "".into(),
            }),
            AuditEvent::Mfa(MfaEvent {
                session_id: String::new(),
                at: 2,
                user: "u".into(),
                resource: String::new(),
                client_addr: String::new(),
                action: "verify".into(),
                result: "ok".into(),
                detail: None,
            }),
        ]
    }

    #[test]
    fn the_tag_first_way_reads_what_serde_reads() {
        for event in events() {
            let payload = encode(&event);
            assert_eq!(decode_tag_first(&payload).as_ref(), Some(&event));
            let by_serde: AuditEvent = rmp_serde::from_slice(&payload).unwrap();
            assert_eq!(decode_event(&payload).unwrap(), by_serde);
        }
    }

    #[test]
    fn a_map_with_the_tag_elsewhere_takes_serdes_way() {
        // {"at": 1, "type": "mfa", ...}: serde finds the tag anywhere.
        let AuditEvent::Mfa(mfa) = events().pop().unwrap() else {
            unreachable!()
        };
        let mut map: serde_json::Map<String, serde_json::Value> =
            match serde_json::to_value(&mfa).unwrap() {
                serde_json::Value::Object(m) => m,
                _ => unreachable!(),
            };
        map.insert("type".into(), "mfa".into());
        let payload = rmp_serde::to_vec_named(&map).unwrap();
        assert!(decode_tag_first(&payload).is_none());
        assert_eq!(decode_event(&payload).unwrap(), AuditEvent::Mfa(mfa));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x81],
            &[0x81, 0xa4, b't'],
            &[0xdf, 0, 0, 0, 0],
            &[0xc1],
        ] {
            assert!(decode_event(bad).is_err());
        }
    }
}
