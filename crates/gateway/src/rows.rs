//! Decoding the few result rows the gateway reads itself (catalog snapshots, `SHOW search_path`).

/// The text columns of a DataRow body; `None` for SQL NULL. `Err` when the body is malformed.
pub fn data_row_texts(body: &[u8]) -> Result<Vec<Option<String>>, &'static str> {
    Ok(data_row_values(body)?
        .into_iter()
        .map(|value| value.map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect())
}

/// The columns of a DataRow body as the server sent them; `None` for SQL NULL.
pub fn data_row_values(body: &[u8]) -> Result<Vec<Option<&[u8]>>, &'static str> {
    let (count, mut rest) = split_i16(body).ok_or("DataRow without a column count")?;
    let mut columns = Vec::with_capacity(usize::from(count.max(0) as u16));
    for _ in 0..count {
        let (len, after) = split_i32(rest).ok_or("DataRow column without a length")?;
        if len < 0 {
            columns.push(None);
            rest = after;
            continue;
        }
        let len = usize::try_from(len).map_err(|_| "DataRow column length out of range")?;
        let value = after
            .get(..len)
            .ok_or("DataRow column longer than the message")?;
        columns.push(Some(value));
        rest = &after[len..];
    }
    Ok(columns)
}

/// The table OID and column number each column of a RowDescription body names as its origin (0 for a
/// computed column).
pub fn row_description_tables(body: &[u8]) -> Result<Vec<(u32, i16)>, &'static str> {
    let (count, mut rest) = split_i16(body).ok_or("RowDescription without a field count")?;
    let mut tables = Vec::with_capacity(usize::from(count.max(0) as u16));
    for _ in 0..count {
        let name_end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or("RowDescription field name without its end")?;
        let field = rest
            .get(name_end + 1..name_end + 19)
            .ok_or("RowDescription field shorter than its layout")?;
        tables.push((
            u32::from_be_bytes([field[0], field[1], field[2], field[3]]),
            i16::from_be_bytes([field[4], field[5]]),
        ));
        rest = &rest[name_end + 19..];
    }
    Ok(tables)
}

fn split_i16(b: &[u8]) -> Option<(i16, &[u8])> {
    let head = b.get(..2)?;
    Some((i16::from_be_bytes([head[0], head[1]]), &b[2..]))
}

fn split_i32(b: &[u8]) -> Option<(i32, &[u8])> {
    let head = b.get(..4)?;
    Some((
        i32::from_be_bytes([head[0], head[1], head[2], head[3]]),
        &b[4..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text_and_null_columns() {
        let body = [0, 2, 0, 0, 0, 2, b'h', b'i', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            data_row_texts(&body).unwrap(),
            vec![Some("hi".to_string()), None]
        );
    }

    #[test]
    fn rejects_truncated_rows() {
        assert!(data_row_texts(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
        assert!(data_row_texts(&[0]).is_err());
    }
}
