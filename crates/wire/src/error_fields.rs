//! Zero-copy view of the fields of an ErrorResponse or NoticeResponse.

use std::fmt;

use crate::WireError;

/// Field codes used in ErrorResponse/NoticeResponse.
pub mod field {
    /// Localized severity.
    pub const SEVERITY: u8 = b'S';
    /// Non-localized severity (PostgreSQL 9.6+).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// SQLSTATE code.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail.
    pub const DETAIL: u8 = b'D';
    /// Hint.
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string.
    pub const POSITION: u8 = b'P';
}

/// The fields of an ErrorResponse/NoticeResponse, borrowed from the message body.
///
/// The layout is validated when constructed, so iteration cannot fail. Values that are not
/// valid UTF-8 (a non-UTF-8 `client_encoding`) are skipped by [`iter`](Self::iter) and
/// [`get`](Self::get) but remain reachable through [`iter_raw`](Self::iter_raw).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    body: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    /// Validates the body: a sequence of (non-zero code byte, NUL-terminated value), then a 0 byte.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut rest = body;
        loop {
            match rest.split_first() {
                None => return Err(WireError::Malformed("error fields lack the terminator")),
                Some((0, [])) => return Ok(ErrorFields { body }),
                Some((0, _)) => return Err(WireError::Malformed("bytes after error fields")),
                Some((_, tail)) => {
                    let nul = tail
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(WireError::Malformed("unterminated error field"))?;
                    rest = tail.get(nul + 1..).unwrap_or_default();
                }
            }
        }
    }

    /// Every `(code, raw value)` pair in wire order.
    pub fn iter_raw(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.body;
        std::iter::from_fn(move || {
            let (&code, tail) = rest.split_first()?;
            if code == 0 {
                return None;
            }
            let nul = tail.iter().position(|&b| b == 0)?;
            let value = tail.get(..nul)?;
            rest = tail.get(nul + 1..).unwrap_or_default();
            Some((code, value))
        })
    }

    /// Every `(code, value)` pair whose value is UTF-8, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a str)> + 'a {
        self.iter_raw()
            .filter_map(|(c, v)| std::str::from_utf8(v).ok().map(|v| (c, v)))
    }

    /// The first value with field code `code`.
    pub fn get(&self, code: u8) -> Option<&'a str> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The SQLSTATE (`C`).
    pub fn sqlstate(&self) -> Option<&'a str> {
        self.get(field::CODE)
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&'a str> {
        self.get(field::MESSAGE)
    }

    /// The severity: non-localized (`V`) when present, else the localized one (`S`).
    pub fn severity(&self) -> Option<&'a str> {
        self.get(field::SEVERITY_NONLOCALIZED)
            .or_else(|| self.get(field::SEVERITY))
    }

    /// The detail (`D`).
    pub fn detail(&self) -> Option<&'a str> {
        self.get(field::DETAIL)
    }

    /// The hint (`H`).
    pub fn hint(&self) -> Option<&'a str> {
        self.get(field::HINT)
    }
}

impl fmt::Debug for ErrorFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(c, v)| (char::from(c), v)))
            .finish()
    }
}
