//! Bounds-checked cursor over a message body; every read returns an error instead of panicking.

use crate::WireError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let bytes = self.take(N, what)?;
        bytes.try_into().map_err(|_| WireError::Malformed(what))
    }

    /// A NUL-terminated string, returned without its terminator.
    pub(crate) fn cstr_bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let nul = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Malformed(what))?;
        let s = self.take(nul, what)?;
        self.take(1, what)?;
        Ok(s)
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.cstr_bytes(what)?).map_err(|_| WireError::Malformed(what))
    }

    /// Errors if bytes are left over, like PostgreSQL's `pq_getmsgend`.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed(what))
        }
    }
}
