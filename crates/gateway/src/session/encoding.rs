//! Statement text in the session's client encoding. The server converts what the client sends from its
//! `client_encoding` before lexing; the gateway must read the same characters, or a multi-byte character
//! whose trailing byte is `\` or `'` (GBK, Shift_JIS, Big5, GB18030) splits a literal differently here.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// How the gateway reads text in one client encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEncoding {
    /// UTF8: the analyser's own.
    Utf8,
    /// An encoding `encoding_rs` converts as the server does.
    Known(&'static Encoding),
    /// One the gateway cannot convert (SQL_ASCII, EUC_TW, MULE_INTERNAL, …): only ASCII text is read.
    Unreadable,
}

impl ClientEncoding {
    /// The encoding the server names `name` (as `client_encoding` reports it: `UTF8`, `LATIN9`, `GBK`…).
    pub fn from_server_name(name: &str) -> Self {
        let upper = name.to_ascii_uppercase();
        let encoding = match upper.as_str() {
            "UTF8" | "UNICODE" => return ClientEncoding::Utf8,
            // The WHATWG "iso-8859-1" is windows-1252, which decodes the same letters and is a
            // bijection on bytes, so text encoded back is the client's own bytes.
            "LATIN1" => encoding_rs::WINDOWS_1252,
            "LATIN2" => encoding_rs::ISO_8859_2,
            "LATIN3" => encoding_rs::ISO_8859_3,
            "LATIN4" => encoding_rs::ISO_8859_4,
            "LATIN5" => encoding_rs::WINDOWS_1254,
            "LATIN6" => encoding_rs::ISO_8859_10,
            "LATIN7" => encoding_rs::ISO_8859_13,
            "LATIN8" => encoding_rs::ISO_8859_14,
            "LATIN9" => encoding_rs::ISO_8859_15,
            "LATIN10" => encoding_rs::ISO_8859_16,
            "ISO_8859_5" => encoding_rs::ISO_8859_5,
            "ISO_8859_6" => encoding_rs::ISO_8859_6,
            "ISO_8859_7" => encoding_rs::ISO_8859_7,
            "ISO_8859_8" => encoding_rs::ISO_8859_8,
            "WIN866" => encoding_rs::IBM866,
            "WIN874" => encoding_rs::WINDOWS_874,
            "WIN1250" => encoding_rs::WINDOWS_1250,
            "WIN1251" => encoding_rs::WINDOWS_1251,
            "WIN1252" => encoding_rs::WINDOWS_1252,
            "WIN1253" => encoding_rs::WINDOWS_1253,
            "WIN1254" => encoding_rs::WINDOWS_1254,
            "WIN1255" => encoding_rs::WINDOWS_1255,
            "WIN1256" => encoding_rs::WINDOWS_1256,
            "WIN1257" => encoding_rs::WINDOWS_1257,
            "WIN1258" => encoding_rs::WINDOWS_1258,
            "KOI8R" => encoding_rs::KOI8_R,
            "KOI8U" => encoding_rs::KOI8_U,
            "EUC_JP" => encoding_rs::EUC_JP,
            "EUC_KR" | "UHC" => encoding_rs::EUC_KR,
            "EUC_CN" | "GBK" => encoding_rs::GBK,
            "GB18030" => encoding_rs::GB18030,
            "BIG5" => encoding_rs::BIG5,
            "SJIS" => encoding_rs::SHIFT_JIS,
            _ => return ClientEncoding::Unreadable,
        };
        ClientEncoding::Known(encoding)
    }

    /// `bytes` as text, or why the gateway cannot read it. ASCII reads the same in every client
    /// encoding the server has (all are ASCII supersets whose multi-byte characters use high bytes
    /// for their lead byte).
    pub fn decode<'a>(self, bytes: &'a [u8], name: &str) -> Result<Cow<'a, str>, String> {
        if bytes.is_ascii() {
            return std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| "unreachable: ASCII is UTF-8".to_string());
        }
        match self {
            ClientEncoding::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| "the statement is not valid UTF8".to_string()),
            ClientEncoding::Known(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| format!("the statement is not valid {name}")),
            ClientEncoding::Unreadable => Err(format!(
                "the gateway cannot read non-ASCII text in client_encoding {name}; use UTF8 or \
                 another encoding it reads"
            )),
        }
    }

    /// `text` in this encoding, to send instead of the client's own bytes; why not when it has a
    /// character the encoding lacks.
    pub fn encode<'a>(self, text: &'a str, name: &str) -> Result<Cow<'a, [u8]>, String> {
        if text.is_ascii() {
            return Ok(Cow::Borrowed(text.as_bytes()));
        }
        match self {
            ClientEncoding::Utf8 => Ok(Cow::Borrowed(text.as_bytes())),
            ClientEncoding::Known(encoding) => {
                let (bytes, _, unmappable) = encoding.encode(text);
                if unmappable {
                    return Err(format!(
                        "the rewritten statement has a character client_encoding {name} lacks"
                    ));
                }
                Ok(bytes)
            }
            ClientEncoding::Unreadable => Err(format!(
                "the rewritten statement has non-ASCII text, which the gateway cannot write in \
                 client_encoding {name}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientEncoding;

    #[test]
    fn a_trailing_backslash_byte_stays_inside_its_character() {
        // GBK 0x955C is one character whose second byte is '\'.
        let gbk = ClientEncoding::from_server_name("GBK");
        let text = gbk.decode(b"SELECT '\x95\x5c' AS c", "GBK").unwrap();
        assert_eq!(text.matches('\\').count(), 0, "{text}");
        assert_eq!(
            gbk.encode(&text, "GBK").unwrap().as_ref(),
            b"SELECT '\x95\x5c' AS c"
        );
        // Shift_JIS 0x815C and Big5 0xA55C likewise.
        for (name, bytes) in [("SJIS", b"'\x81\x5c'"), ("BIG5", b"'\xa5\x5c'")] {
            let text = ClientEncoding::from_server_name(name)
                .decode(bytes, name)
                .unwrap();
            assert!(!text.contains('\\'), "{name}: {text}");
        }
    }

    #[test]
    fn latin_and_unreadable_encodings() {
        let latin9 = ClientEncoding::from_server_name("LATIN9");
        assert_eq!(latin9.decode(b"'\xa4'", "LATIN9").unwrap(), "'\u{20ac}'");
        assert_eq!(
            latin9.encode("'\u{20ac}'", "LATIN9").unwrap().as_ref(),
            b"'\xa4'"
        );
        assert!(latin9.encode("'\u{4e2d}'", "LATIN9").is_err());
        let ascii = ClientEncoding::from_server_name("SQL_ASCII");
        assert_eq!(ascii, ClientEncoding::Unreadable);
        assert_eq!(ascii.decode(b"SELECT 1", "SQL_ASCII").unwrap(), "SELECT 1");
        assert!(ascii.decode(b"SELECT '\xe9'", "SQL_ASCII").is_err());
        let utf8 = ClientEncoding::from_server_name("UTF8");
        assert!(utf8.decode(b"'\xff'", "UTF8").is_err());
    }
}
