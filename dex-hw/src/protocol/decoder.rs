//! A streaming packet decoder that resynchronises after garbage.

use super::{HEADER, STATUS, crc, unstuff};
use crate::error::{Error, Result};

/// A framed packet whose CRC checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Servo ID (or broadcast).
    pub id: u8,
    /// Instruction code (`0x55` for status packets).
    pub instruction: u8,
    /// Everything after the instruction byte and before the CRC, unstuffed (for a
    /// status packet: the error byte, then the parameters). Fast read replies are
    /// not stuffed and are kept as received.
    pub params: Vec<u8>,
    /// The packet as received, header to CRC.
    pub raw: Vec<u8>,
}

impl Packet {
    /// Whether this is a status (reply) packet.
    pub fn is_status(&self) -> bool {
        self.instruction == STATUS
    }

    /// The error byte of a status packet.
    pub fn status_error(&self) -> u8 {
        self.params.first().copied().unwrap_or(0)
    }

    /// The parameters of a status packet (after the error byte).
    pub fn status_params(&self) -> &[u8] {
        self.params.get(1..).unwrap_or(&[])
    }
}

/// Accumulates bytes and yields whole packets.
///
/// Bytes before a header are discarded (and counted). A packet whose CRC does
/// not match yields [`Error::Crc`] once, and the decoder resumes the search one
/// byte after that packet's header, so one corrupted packet loses nothing that
/// follows it.
#[derive(Debug, Default, Clone)]
pub struct PacketDecoder {
    buf: Vec<u8>,
    discarded: usize,
}

/// The largest LEN accepted; longer frames are taken as noise.
const MAX_LEN: usize = 4096;

impl PacketDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes discarded so far while searching for a header.
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    /// Bytes waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops every buffered byte.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next complete packet, `None` if more bytes are needed, or an error for
    /// a framed packet whose CRC or length is wrong.
    pub fn next_packet(&mut self) -> Option<Result<Packet>> {
        loop {
            // Find a header whose reserved byte is not FD.
            let start = self
                .buf
                .windows(4)
                .position(|w| w[..3] == HEADER[..3] && w[3] != 0xFD);
            let Some(start) = start else {
                // Keep the longest tail that may begin a header.
                let n = self.buf.len();
                let keep = (1..=n.min(3))
                    .rev()
                    .find(|&k| HEADER[..3].starts_with(&self.buf[n - k..]))
                    .unwrap_or(0);
                let drop = n - keep;
                self.discarded += drop;
                self.buf.drain(..drop);
                return None;
            };
            if start > 0 {
                self.discarded += start;
                self.buf.drain(..start);
            }
            if self.buf.len() < 7 {
                return None;
            }
            let len = usize::from(u16::from_le_bytes([self.buf[5], self.buf[6]]));
            if !(3..=MAX_LEN).contains(&len) {
                // Not a real packet: skip this header and search again.
                self.discarded += 1;
                self.buf.drain(..1);
                continue;
            }
            let total = 7 + len;
            if self.buf.len() < total {
                return None;
            }
            let raw: Vec<u8> = self.buf[..total].to_vec();
            let got = u16::from_le_bytes([raw[total - 2], raw[total - 1]]);
            let expected = crc::crc16(&raw[..total - 2]);
            if got != expected {
                self.discarded += 1;
                self.buf.drain(..1);
                return Some(Err(Error::Crc { expected, got }));
            }
            self.buf.drain(..total);
            let id = raw[4];
            let instruction = raw[7];
            let body = &raw[8..total - 2];
            // The combined reply of a fast read comes from the broadcast ID and is not stuffed.
            let params = if instruction == STATUS && id == super::BROADCAST_ID {
                body.to_vec()
            } else {
                unstuff(body)
            };
            return Some(Ok(Packet {
                id,
                instruction,
                params,
                raw,
            }));
        }
    }
}
