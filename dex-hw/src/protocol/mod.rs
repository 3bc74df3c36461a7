//! Dynamixel Protocol 2.0: packets as pure functions over byte buffers.
//!
//! ```text
//! instruction: FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAM… | CRC_L CRC_H
//! status:      FF FF FD 00 | ID | LEN_L LEN_H | 0x55 | ERR | PARAM… | CRC_L CRC_H
//! ```
//!
//! `LEN` counts the bytes after itself (instruction, error, parameters, CRC).
//! Parameters are byte-stuffed (`FF FF FD` → `FF FF FD FD`) before the CRC is
//! computed, except in the combined reply of Fast Sync Read and Fast Bulk Read.
//! Facts from the ROBOTIS e-Manual, "DYNAMIXEL Protocol 2.0".

pub mod crc;
mod decoder;
pub(crate) mod status;

pub use decoder::{Packet, PacketDecoder};
pub use status::StatusError;

use crate::error::{Error, Result};

/// The four bytes that open every packet (header `FF FF FD` and a reserved `00`).
pub const HEADER: [u8; 4] = [0xFF, 0xFF, 0xFD, 0x00];
/// The broadcast ID: every servo executes the instruction.
pub const BROADCAST_ID: u8 = 0xFE;
/// The largest ID a servo can have.
pub const MAX_ID: u8 = 252;
/// Instruction byte of a status (reply) packet.
pub const STATUS: u8 = 0x55;

/// Instruction codes.
pub mod inst {
    /// Ping: model number and firmware version.
    pub const PING: u8 = 0x01;
    /// Read from the control table.
    pub const READ: u8 = 0x02;
    /// Write to the control table.
    pub const WRITE: u8 = 0x03;
    /// Write, held until Action.
    pub const REG_WRITE: u8 = 0x04;
    /// Execute a held Reg Write.
    pub const ACTION: u8 = 0x05;
    /// Factory reset.
    pub const FACTORY_RESET: u8 = 0x06;
    /// Reboot.
    pub const REBOOT: u8 = 0x08;
    /// Clear the multi-turn count or errors.
    pub const CLEAR: u8 = 0x10;
    /// Store or restore the control table.
    pub const CONTROL_TABLE_BACKUP: u8 = 0x20;
    /// Read the same item from several servos, one reply each.
    pub const SYNC_READ: u8 = 0x82;
    /// Write the same item to several servos.
    pub const SYNC_WRITE: u8 = 0x83;
    /// Read the same item from several servos in one combined reply.
    pub const FAST_SYNC_READ: u8 = 0x8A;
    /// Read different items from several servos, one reply each.
    pub const BULK_READ: u8 = 0x92;
    /// Write different items to several servos.
    pub const BULK_WRITE: u8 = 0x93;
    /// Read different items from several servos in one combined reply.
    pub const FAST_BULK_READ: u8 = 0x9A;
}

/// Keyword parameters of Clear (`44 58 4C 22`) and Control Table Backup (`43 54 52 4C`).
const CLEAR_KEY: [u8; 4] = [0x44, 0x58, 0x4C, 0x22];
const BACKUP_KEY: [u8; 4] = [0x43, 0x54, 0x52, 0x4C];

/// One item of a Bulk Read: which servo, which address, how many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkReadItem {
    /// Servo ID.
    pub id: u8,
    /// Start address.
    pub address: u16,
    /// Number of bytes.
    pub length: u16,
}

/// One item of a Bulk Write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkWriteItem {
    /// Servo ID.
    pub id: u8,
    /// Start address.
    pub address: u16,
    /// The bytes to write.
    pub data: Vec<u8>,
}

/// An instruction, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Ping.
    Ping,
    /// Read `length` bytes from `address`.
    Read {
        /// Start address.
        address: u16,
        /// Number of bytes.
        length: u16,
    },
    /// Write `data` at `address`.
    Write {
        /// Start address.
        address: u16,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Write `data` at `address` when Action arrives.
    RegWrite {
        /// Start address.
        address: u16,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Execute the held Reg Write.
    Action,
    /// Factory reset: `0xFF` all, `0x01` all but ID, `0x02` all but ID and baud rate.
    FactoryReset {
        /// Which items to reset.
        mode: u8,
    },
    /// Reboot.
    Reboot,
    /// Clear: option `0x01` resets the multi-turn count.
    Clear {
        /// What to clear.
        option: u8,
    },
    /// Control Table Backup: store (`false`) or restore (`true`).
    ControlTableBackup {
        /// Restore instead of store.
        restore: bool,
    },
    /// Sync Read of `length` bytes at `address` from each of `ids`.
    SyncRead {
        /// Start address.
        address: u16,
        /// Number of bytes per servo.
        length: u16,
        /// The servos, in reply order.
        ids: Vec<u8>,
    },
    /// Fast Sync Read (one combined reply).
    FastSyncRead {
        /// Start address.
        address: u16,
        /// Number of bytes per servo.
        length: u16,
        /// The servos, in reply order.
        ids: Vec<u8>,
    },
    /// Sync Write of `length` bytes at `address`: `data` holds `ids.len() * length`
    /// bytes, servo by servo.
    SyncWrite {
        /// Start address.
        address: u16,
        /// Number of bytes per servo.
        length: u16,
        /// The servos.
        ids: Vec<u8>,
        /// Their data, concatenated.
        data: Vec<u8>,
    },
    /// Bulk Read.
    BulkRead(Vec<BulkReadItem>),
    /// Fast Bulk Read (one combined reply).
    FastBulkRead(Vec<BulkReadItem>),
    /// Bulk Write.
    BulkWrite(Vec<BulkWriteItem>),
}

impl Instruction {
    /// The instruction code.
    pub fn code(&self) -> u8 {
        match self {
            Instruction::Ping => inst::PING,
            Instruction::Read { .. } => inst::READ,
            Instruction::Write { .. } => inst::WRITE,
            Instruction::RegWrite { .. } => inst::REG_WRITE,
            Instruction::Action => inst::ACTION,
            Instruction::FactoryReset { .. } => inst::FACTORY_RESET,
            Instruction::Reboot => inst::REBOOT,
            Instruction::Clear { .. } => inst::CLEAR,
            Instruction::ControlTableBackup { .. } => inst::CONTROL_TABLE_BACKUP,
            Instruction::SyncRead { .. } => inst::SYNC_READ,
            Instruction::FastSyncRead { .. } => inst::FAST_SYNC_READ,
            Instruction::SyncWrite { .. } => inst::SYNC_WRITE,
            Instruction::BulkRead(_) => inst::BULK_READ,
            Instruction::FastBulkRead(_) => inst::FAST_BULK_READ,
            Instruction::BulkWrite(_) => inst::BULK_WRITE,
        }
    }

    /// Appends the (unstuffed) parameters to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if a Sync Write's data length disagrees with its IDs.
    fn write_params(&self, out: &mut Vec<u8>) -> Result<()> {
        let le = |v: u16| v.to_le_bytes();
        match self {
            Instruction::Ping | Instruction::Action | Instruction::Reboot => {}
            Instruction::Read { address, length } => {
                out.extend(le(*address));
                out.extend(le(*length));
            }
            Instruction::Write { address, data } | Instruction::RegWrite { address, data } => {
                out.extend(le(*address));
                out.extend_from_slice(data);
            }
            Instruction::FactoryReset { mode } => out.push(*mode),
            Instruction::Clear { option } => {
                out.push(*option);
                out.extend(CLEAR_KEY);
            }
            Instruction::ControlTableBackup { restore } => {
                out.push(if *restore { 0x02 } else { 0x01 });
                out.extend(BACKUP_KEY);
            }
            Instruction::SyncRead {
                address,
                length,
                ids,
            }
            | Instruction::FastSyncRead {
                address,
                length,
                ids,
            } => {
                out.extend(le(*address));
                out.extend(le(*length));
                out.extend_from_slice(ids);
            }
            Instruction::SyncWrite {
                address,
                length,
                ids,
                data,
            } => {
                let n = usize::from(*length);
                if data.len() != ids.len() * n {
                    return Err(Error::InvalidArgument {
                        message: format!(
                            "Sync Write of {} servos × {n} bytes needs {} data bytes, got {}",
                            ids.len(),
                            ids.len() * n,
                            data.len()
                        ),
                    });
                }
                out.extend(le(*address));
                out.extend(le(*length));
                for (id, chunk) in ids.iter().zip(data.chunks_exact(n.max(1))) {
                    out.push(*id);
                    out.extend_from_slice(chunk);
                }
            }
            Instruction::BulkRead(items) | Instruction::FastBulkRead(items) => {
                for item in items {
                    out.push(item.id);
                    out.extend(le(item.address));
                    out.extend(le(item.length));
                }
            }
            Instruction::BulkWrite(items) => {
                for item in items {
                    out.push(item.id);
                    out.extend(le(item.address));
                    out.extend(le(item.data.len() as u16));
                    out.extend_from_slice(&item.data);
                }
            }
        }
        Ok(())
    }

    /// Parses an instruction from its code and (unstuffed) parameters.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for an unknown code or parameters of the wrong length.
    pub fn parse(code: u8, params: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::Malformed {
            message: format!(
                "instruction 0x{code:02X}: {what} ({} parameter bytes)",
                params.len()
            ),
        };
        let u16_at = |i: usize| u16::from_le_bytes([params[i], params[i + 1]]);
        Ok(match code {
            inst::PING | inst::ACTION | inst::REBOOT => {
                if !params.is_empty() {
                    return Err(bad("takes no parameters"));
                }
                match code {
                    inst::PING => Instruction::Ping,
                    inst::ACTION => Instruction::Action,
                    _ => Instruction::Reboot,
                }
            }
            inst::READ => {
                if params.len() != 4 {
                    return Err(bad("needs address and length"));
                }
                Instruction::Read {
                    address: u16_at(0),
                    length: u16_at(2),
                }
            }
            inst::WRITE | inst::REG_WRITE => {
                if params.len() < 3 {
                    return Err(bad("needs an address and at least one data byte"));
                }
                let (address, data) = (u16_at(0), params[2..].to_vec());
                if code == inst::WRITE {
                    Instruction::Write { address, data }
                } else {
                    Instruction::RegWrite { address, data }
                }
            }
            inst::FACTORY_RESET => match params {
                [mode] => Instruction::FactoryReset { mode: *mode },
                _ => return Err(bad("needs one mode byte")),
            },
            inst::CLEAR => match params {
                [option, rest @ ..] if rest == CLEAR_KEY => Instruction::Clear { option: *option },
                _ => return Err(bad("needs an option and the key 44 58 4C 22")),
            },
            inst::CONTROL_TABLE_BACKUP => match params {
                [mode @ (1 | 2), rest @ ..] if rest == BACKUP_KEY => {
                    Instruction::ControlTableBackup {
                        restore: *mode == 2,
                    }
                }
                _ => return Err(bad("needs 01 or 02 and the key 43 54 52 4C")),
            },
            inst::SYNC_READ | inst::FAST_SYNC_READ => {
                if params.len() < 5 {
                    return Err(bad("needs address, length and at least one ID"));
                }
                let (address, length, ids) = (u16_at(0), u16_at(2), params[4..].to_vec());
                if code == inst::SYNC_READ {
                    Instruction::SyncRead {
                        address,
                        length,
                        ids,
                    }
                } else {
                    Instruction::FastSyncRead {
                        address,
                        length,
                        ids,
                    }
                }
            }
            inst::SYNC_WRITE => {
                if params.len() < 4 {
                    return Err(bad("needs address and length"));
                }
                let (address, length) = (u16_at(0), u16_at(2));
                let stride = usize::from(length) + 1;
                let body = &params[4..];
                if length == 0 || body.is_empty() || !body.len().is_multiple_of(stride) {
                    return Err(bad("data is not a whole number of (ID, data) entries"));
                }
                let mut ids = Vec::with_capacity(body.len() / stride);
                let mut data = Vec::with_capacity(body.len());
                for entry in body.chunks_exact(stride) {
                    ids.push(entry[0]);
                    data.extend_from_slice(&entry[1..]);
                }
                Instruction::SyncWrite {
                    address,
                    length,
                    ids,
                    data,
                }
            }
            inst::BULK_READ | inst::FAST_BULK_READ => {
                if params.is_empty() || !params.len().is_multiple_of(5) {
                    return Err(bad("needs (ID, address, length) entries"));
                }
                let items = params
                    .chunks_exact(5)
                    .map(|c| BulkReadItem {
                        id: c[0],
                        address: u16::from_le_bytes([c[1], c[2]]),
                        length: u16::from_le_bytes([c[3], c[4]]),
                    })
                    .collect();
                if code == inst::BULK_READ {
                    Instruction::BulkRead(items)
                } else {
                    Instruction::FastBulkRead(items)
                }
            }
            inst::BULK_WRITE => {
                let mut items = Vec::new();
                let mut rest = params;
                while !rest.is_empty() {
                    if rest.len() < 5 {
                        return Err(bad("truncated (ID, address, length, data) entry"));
                    }
                    let len = usize::from(u16::from_le_bytes([rest[3], rest[4]]));
                    if len == 0 || rest.len() < 5 + len {
                        return Err(bad("entry data shorter than its length"));
                    }
                    items.push(BulkWriteItem {
                        id: rest[0],
                        address: u16::from_le_bytes([rest[1], rest[2]]),
                        data: rest[5..5 + len].to_vec(),
                    });
                    rest = &rest[5 + len..];
                }
                if items.is_empty() {
                    return Err(bad("needs at least one entry"));
                }
                Instruction::BulkWrite(items)
            }
            other => {
                return Err(Error::Malformed {
                    message: format!("unknown instruction 0x{other:02X}"),
                });
            }
        })
    }
}

/// Appends `body` to `out`, inserting `FD` after every `FF FF FD`, where the
/// pattern is searched from the instruction byte on (`out[body_start..]` plus `body`).
fn extend_stuffed(out: &mut Vec<u8>, body_start: usize, body: &[u8]) {
    for &b in body {
        out.push(b);
        let n = out.len();
        if b == 0xFD && n - body_start >= 3 && out[n - 3] == 0xFF && out[n - 2] == 0xFF {
            out.push(0xFD);
        }
    }
}

/// Removes byte stuffing: every `FF FF FD FD` becomes `FF FF FD`.
pub fn unstuff(stuffed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stuffed.len());
    let mut i = 0;
    while i < stuffed.len() {
        let b = stuffed[i];
        out.push(b);
        let n = out.len();
        if b == 0xFD
            && n >= 3
            && out[n - 3] == 0xFF
            && out[n - 2] == 0xFF
            && stuffed.get(i + 1) == Some(&0xFD)
        {
            i += 1; // skip the stuffed FD
        }
        i += 1;
    }
    out
}

/// Writes the header, `id`, the length placeholder; returns where the body starts.
fn begin(out: &mut Vec<u8>, id: u8) -> usize {
    out.extend_from_slice(&HEADER);
    out.push(id);
    out.extend_from_slice(&[0, 0]);
    out.len()
}

/// Fixes LEN and appends the CRC of everything written since `packet_start`.
fn finish(out: &mut Vec<u8>, packet_start: usize) -> Result<()> {
    let len = out.len() - (packet_start + 7) + 2;
    let len = u16::try_from(len).map_err(|_| Error::InvalidArgument {
        message: format!("packet of {len} bytes exceeds the protocol's 65,535"),
    })?;
    out[packet_start + 5..packet_start + 7].copy_from_slice(&len.to_le_bytes());
    let crc = crc::crc16(&out[packet_start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Appends the instruction packet for `instruction` to servo `id` to `out`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for an ID above 252 other than broadcast, a packet
/// longer than the protocol allows, or inconsistent Sync Write data.
///
/// # Examples
///
/// ```
/// use dex_hw::protocol::{encode_instruction, Instruction};
///
/// let mut bytes = Vec::new();
/// encode_instruction(&mut bytes, 1, &Instruction::Ping)?;
/// assert_eq!(bytes, [0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x03, 0x00, 0x01, 0x19, 0x4E]);
/// # Ok::<(), dex_hw::Error>(())
/// ```
pub fn encode_instruction(out: &mut Vec<u8>, id: u8, instruction: &Instruction) -> Result<()> {
    check_id(id, true)?;
    let start = out.len();
    let body_start = begin(out, id);
    out.push(instruction.code());
    let mut params = Vec::new();
    instruction.write_params(&mut params)?;
    extend_stuffed(out, body_start, &params);
    finish(out, start)
}

/// Appends a Sync Write packet without building an [`Instruction`]: `data` holds
/// `ids.len() * length` bytes, servo by servo. The control loop's hot path.
///
/// # Errors
///
/// As [`encode_instruction`].
pub fn encode_sync_write(
    out: &mut Vec<u8>,
    address: u16,
    length: u16,
    ids: &[u8],
    data: &[u8],
) -> Result<()> {
    let n = usize::from(length);
    if n == 0 || data.len() != ids.len() * n {
        return Err(Error::InvalidArgument {
            message: format!(
                "Sync Write of {} servos × {n} bytes needs {} data bytes, got {}",
                ids.len(),
                ids.len() * n,
                data.len()
            ),
        });
    }
    for &id in ids {
        check_id(id, false)?;
    }
    let start = out.len();
    let body_start = begin(out, BROADCAST_ID);
    out.push(inst::SYNC_WRITE);
    extend_stuffed(out, body_start, &address.to_le_bytes());
    extend_stuffed(out, body_start, &length.to_le_bytes());
    for (id, chunk) in ids.iter().zip(data.chunks_exact(n)) {
        extend_stuffed(out, body_start, std::slice::from_ref(id));
        extend_stuffed(out, body_start, chunk);
    }
    finish(out, start)
}

/// Appends a status packet (servo `id`, error byte `error`, `params`) to `out`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a packet longer than the protocol allows.
pub fn encode_status(out: &mut Vec<u8>, id: u8, error: u8, params: &[u8]) -> Result<()> {
    let start = out.len();
    let body_start = begin(out, id);
    out.push(STATUS);
    extend_stuffed(out, body_start, &[error]);
    extend_stuffed(out, body_start, params);
    finish(out, start)
}

/// Appends the combined reply of a Fast Sync Read or Fast Bulk Read: one
/// `(error, id, data)` entry per servo. Not byte-stuffed; each entry but the
/// last carries the running CRC of the packet so far, and the last entry's CRC
/// is the packet's.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for no entries or a packet longer than the protocol allows.
pub fn encode_fast_read_reply(out: &mut Vec<u8>, entries: &[(u8, u8, &[u8])]) -> Result<()> {
    if entries.is_empty() {
        return Err(Error::InvalidArgument {
            message: "a fast read reply needs at least one entry".into(),
        });
    }
    let start = out.len();
    begin(out, BROADCAST_ID);
    out.push(STATUS);
    for (k, (error, id, data)) in entries.iter().enumerate() {
        out.push(*error);
        out.push(*id);
        out.extend_from_slice(data);
        if k + 1 < entries.len() {
            // Placeholder: the running CRC needs LEN, which is known only at the end.
            out.extend_from_slice(&[0, 0]);
        }
    }
    let len = out.len() - (start + 7) + 2;
    let len = u16::try_from(len).map_err(|_| Error::InvalidArgument {
        message: format!("packet of {len} bytes exceeds the protocol's 65,535"),
    })?;
    out[start + 5..start + 7].copy_from_slice(&len.to_le_bytes());
    // Fill in the running CRCs now that LEN is set.
    let mut pos = start + 8;
    let mut crc = crc::crc16(&out[start..pos]);
    for (k, (_, _, data)) in entries.iter().enumerate() {
        let end = pos + 2 + data.len();
        crc = crc::update(crc, &out[pos..end]);
        if k + 1 < entries.len() {
            out[end..end + 2].copy_from_slice(&crc.to_le_bytes());
            crc = crc::update(crc, &out[end..end + 2]);
            pos = end + 2;
        } else {
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }
    Ok(())
}

/// One servo's part of a fast read reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastReadEntry {
    /// Servo ID.
    pub id: u8,
    /// Its status error byte.
    pub error: u8,
    /// The bytes read.
    pub data: Vec<u8>,
}

/// Splits the body of a fast read reply (`packet.params` of a status packet from
/// the broadcast ID, error byte included) into per-servo entries of the given
/// lengths, checking each entry's running CRC against the packet's raw bytes.
///
/// # Errors
///
/// [`Error::Malformed`] if the sizes disagree, [`Error::Crc`] for a bad running CRC.
pub fn split_fast_read_reply(packet: &Packet, lengths: &[usize]) -> Result<Vec<FastReadEntry>> {
    // packet.raw = header(4) id len(2) inst | entries... | crc(2)
    let raw = &packet.raw;
    let expected: usize = lengths.iter().map(|l| l + 4).sum::<usize>() + 8;
    if raw.len() != expected || lengths.is_empty() {
        return Err(Error::Malformed {
            message: format!(
                "fast read reply of {} bytes, expected {expected} for {} servos",
                raw.len(),
                lengths.len()
            ),
        });
    }
    let mut entries = Vec::with_capacity(lengths.len());
    let mut pos = 8;
    let mut crc = crc::crc16(&raw[..pos]);
    for (k, &len) in lengths.iter().enumerate() {
        let error = raw[pos];
        let id = raw[pos + 1];
        let data = raw[pos + 2..pos + 2 + len].to_vec();
        crc = crc::update(crc, &raw[pos..pos + 2 + len]);
        let crc_pos = pos + 2 + len;
        let got = u16::from_le_bytes([raw[crc_pos], raw[crc_pos + 1]]);
        if k + 1 < lengths.len() && got != crc {
            return Err(Error::Crc { expected: crc, got });
        }
        crc = crc::update(crc, &raw[crc_pos..crc_pos + 2]);
        entries.push(FastReadEntry { id, error, data });
        pos = crc_pos + 2;
    }
    Ok(entries)
}

fn check_id(id: u8, broadcast_ok: bool) -> Result<()> {
    if id <= MAX_ID || (broadcast_ok && id == BROADCAST_ID) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            message: format!(
                "servo ID {id} is out of range (0..=252{})",
                if broadcast_ok {
                    ", or 254 for broadcast"
                } else {
                    ""
                }
            ),
        })
    }
}

/// Bit 7 of a status error byte: the servo has a hardware error (read address 70).
pub const ALERT_BIT: u8 = 0x80;
