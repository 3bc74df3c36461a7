//! The host side of a Protocol 2.0 bus: send instructions, wait for replies.

use std::time::{Duration, Instant};

/// When a wait ends: on the wall clock, or on a transport's emulated clock.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Wall(Instant),
    Emulated(f64),
}

use crate::error::{Error, Result};
use crate::protocol::{
    self, BROADCAST_ID, BulkReadItem, BulkWriteItem, Instruction, Packet, PacketDecoder,
    StatusError,
};
use crate::transport::Transport;

/// What a servo says to a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReply {
    /// Servo ID.
    pub id: u8,
    /// Model number.
    pub model: u16,
    /// Firmware version.
    pub firmware: u8,
}

/// A Protocol 2.0 bus over a [`Transport`].
///
/// Every method sends one instruction and, where the protocol answers, waits for
/// the reply up to the bus's timeout. Replies are checked: CRC, servo ID,
/// instruction, length, and the status error byte (an error number becomes
/// [`Error::Status`], the alert bit [`Error::HardwareError`]).
#[derive(Debug)]
pub struct DynamixelBus<T: Transport> {
    port: T,
    decoder: PacketDecoder,
    tx: Vec<u8>,
    timeout: Duration,
}

impl<T: Transport> DynamixelBus<T> {
    /// A bus over `port`, with a reply timeout of 20 ms.
    pub fn new(port: T) -> Self {
        Self {
            port,
            decoder: PacketDecoder::new(),
            tx: Vec::with_capacity(512),
            timeout: Duration::from_millis(20),
        }
    }

    /// Sets how long to wait for a reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The transport.
    pub fn port(&self) -> &T {
        &self.port
    }

    /// The transport, mutable.
    pub fn port_mut(&mut self) -> &mut T {
        &mut self.port
    }

    /// Sends the bytes in `self.tx`, after dropping stale input.
    fn send(&mut self) -> Result<()> {
        self.port.clear_input()?;
        self.decoder.clear();
        self.port.write_all(&self.tx)
    }

    fn send_instruction(&mut self, id: u8, instruction: &Instruction) -> Result<()> {
        self.tx.clear();
        protocol::encode_instruction(&mut self.tx, id, instruction)?;
        self.send()
    }

    /// Waits for the next status packet; CRC-failed frames are skipped and the
    /// search goes on until the deadline.
    fn receive(
        &mut self,
        deadline: Deadline,
        id: Option<u8>,
        operation: &'static str,
    ) -> Result<Packet> {
        let mut buf = [0u8; 1024];
        let mut last_error = None;
        loop {
            while let Some(p) = self.decoder.next_packet() {
                match p {
                    Ok(p) if p.is_status() => return Ok(p),
                    Ok(_) => {} // our own instruction echoed on a shared line
                    Err(e) => last_error = Some(e),
                }
            }
            let remaining = self.remaining(deadline);
            // A read that returns nothing waited the whole remaining time.
            let n = if remaining.is_zero() {
                0
            } else {
                self.port.read(&mut buf, remaining)?
            };
            if n == 0 {
                return Err(last_error.unwrap_or(Error::Timeout {
                    id,
                    operation,
                    waited: self.timeout,
                }));
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Receives a status packet from `id` and checks its error byte.
    fn expect_status(
        &mut self,
        id: u8,
        deadline: Deadline,
        operation: &'static str,
    ) -> Result<Vec<u8>> {
        let p = self.receive_from(id, deadline, operation)?;
        check_error(id, p.status_error())?;
        Ok(p.status_params().to_vec())
    }

    fn receive_from(
        &mut self,
        id: u8,
        deadline: Deadline,
        operation: &'static str,
    ) -> Result<Packet> {
        let p = self.receive(deadline, Some(id), operation)?;
        if p.id != id {
            return Err(Error::UnexpectedReply {
                message: format!("{operation}: reply from servo {} instead of {id}", p.id),
            });
        }
        Ok(p)
    }

    /// Reads Hardware Error Status (address 70) of a servo whose replies carry
    /// the alert bit (which other reads report as [`Error::HardwareError`]).
    ///
    /// # Errors
    ///
    /// Timeouts, bad replies, or an error number in the status.
    pub fn hardware_error_status(&mut self, id: u8) -> Result<u8> {
        let item = crate::control_table::HARDWARE_ERROR_STATUS;
        self.send_instruction(
            id,
            &Instruction::Read {
                address: item.address,
                length: 1,
            },
        )?;
        let p = self.receive_from(id, self.deadline(), "read hardware error status")?;
        if let Some(error) = StatusError::from_byte(p.status_error()) {
            return Err(Error::Status {
                id,
                error,
                byte: p.status_error(),
            });
        }
        match p.status_params() {
            [bits] => Ok(*bits),
            other => Err(Error::Malformed {
                message: format!(
                    "hardware error status of servo {id} carries {} bytes",
                    other.len()
                ),
            }),
        }
    }

    fn deadline(&self) -> Deadline {
        self.deadline_after(self.timeout)
    }

    fn deadline_after(&self, wait: Duration) -> Deadline {
        match self.port.emulated_time() {
            Some(t) => Deadline::Emulated(t + wait.as_secs_f64()),
            None => Deadline::Wall(Instant::now() + wait),
        }
    }

    fn remaining(&self, deadline: Deadline) -> Duration {
        match deadline {
            Deadline::Wall(d) => d.saturating_duration_since(Instant::now()),
            Deadline::Emulated(d) => {
                let now = self.port.emulated_time().unwrap_or(d);
                Duration::from_secs_f64((d - now).max(0.0))
            }
        }
    }

    /// Pings one servo.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if it does not answer; see the type docs for the rest.
    pub fn ping(&mut self, id: u8) -> Result<PingReply> {
        self.send_instruction(id, &Instruction::Ping)?;
        let params = self.expect_status(id, self.deadline(), "ping")?;
        parse_ping(id, &params)
    }

    /// Pings every servo at once (broadcast) and collects the replies that arrive
    /// within `wait`, sorted by ID.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the port fails.
    pub fn broadcast_ping(&mut self, wait: Duration) -> Result<Vec<PingReply>> {
        self.send_instruction(BROADCAST_ID, &Instruction::Ping)?;
        let deadline = self.deadline_after(wait);
        let mut found = Vec::new();
        loop {
            match self.receive(deadline, None, "broadcast ping") {
                Ok(p) => {
                    if let Ok(reply) = parse_ping(p.id, p.status_params()) {
                        found.push(reply);
                    }
                }
                Err(Error::Timeout { .. } | Error::Crc { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        found.sort_by_key(|r| r.id);
        found.dedup_by_key(|r| r.id);
        Ok(found)
    }

    /// Reads `length` bytes at `address` of servo `id`.
    ///
    /// # Errors
    ///
    /// See the type docs.
    pub fn read(&mut self, id: u8, address: u16, length: u16) -> Result<Vec<u8>> {
        self.send_instruction(id, &Instruction::Read { address, length })?;
        let data = self.expect_status(id, self.deadline(), "read")?;
        check_len(id, "read", usize::from(length), data.len())?;
        Ok(data)
    }

    /// Writes `data` at `address` of servo `id` and waits for its acknowledgement
    /// (none is awaited for the broadcast ID).
    ///
    /// # Errors
    ///
    /// See the type docs; [`Error::Status`] with [`StatusError::Access`] for an
    /// EEPROM item written with torque on.
    pub fn write(&mut self, id: u8, address: u16, data: &[u8]) -> Result<()> {
        self.send_instruction(
            id,
            &Instruction::Write {
                address,
                data: data.to_vec(),
            },
        )?;
        if id != BROADCAST_ID {
            self.expect_status(id, self.deadline(), "write")?;
        }
        Ok(())
    }

    /// Writes a value of 1, 2 or 4 bytes (little endian, two's complement).
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::write`].
    pub fn write_value(
        &mut self,
        id: u8,
        item: crate::control_table::Item,
        value: i64,
    ) -> Result<()> {
        let bytes = crate::control_table::to_bytes(value, item.size);
        self.write(id, item.address, &bytes)
    }

    /// Reads a control-table item as a number (sign-extended where the item is signed).
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::read`].
    pub fn read_value(&mut self, id: u8, item: crate::control_table::Item) -> Result<i64> {
        let data = self.read(id, item.address, item.size)?;
        Ok(crate::control_table::from_bytes(&data, item.signed))
    }

    /// Reg Write: `data` at `address`, executed by the next [`DynamixelBus::action`].
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::write`].
    pub fn reg_write(&mut self, id: u8, address: u16, data: &[u8]) -> Result<()> {
        self.send_instruction(
            id,
            &Instruction::RegWrite {
                address,
                data: data.to_vec(),
            },
        )?;
        if id != BROADCAST_ID {
            self.expect_status(id, self.deadline(), "reg write")?;
        }
        Ok(())
    }

    /// Executes held Reg Writes.
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::write`].
    pub fn action(&mut self, id: u8) -> Result<()> {
        self.send_instruction(id, &Instruction::Action)?;
        if id != BROADCAST_ID {
            self.expect_status(id, self.deadline(), "action")?;
        }
        Ok(())
    }

    /// Reboots a servo (clears a hardware error; torque comes back off).
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::write`].
    pub fn reboot(&mut self, id: u8) -> Result<()> {
        self.send_instruction(id, &Instruction::Reboot)?;
        if id != BROADCAST_ID {
            // The acknowledgement still carries the alert bit of the error being cleared.
            let p = self.receive_from(id, self.deadline(), "reboot")?;
            if let Some(error) = StatusError::from_byte(p.status_error()) {
                return Err(Error::Status {
                    id,
                    error,
                    byte: p.status_error(),
                });
            }
        }
        Ok(())
    }

    /// Sync Write: the same item to several servos; `data` holds `length` bytes per
    /// servo, in `ids` order. No reply.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for inconsistent sizes, [`Error::Io`].
    pub fn sync_write(&mut self, address: u16, length: u16, ids: &[u8], data: &[u8]) -> Result<()> {
        self.tx.clear();
        protocol::encode_sync_write(&mut self.tx, address, length, ids, data)?;
        // No reply to wait for, so no stale input to drop first.
        self.port.write_all(&self.tx)
    }

    /// Bulk Write: different items to several servos. No reply.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty list, [`Error::Io`].
    pub fn bulk_write(&mut self, items: Vec<BulkWriteItem>) -> Result<()> {
        if items.is_empty() {
            return Err(Error::InvalidArgument {
                message: "Bulk Write needs at least one item".into(),
            });
        }
        self.send_instruction(BROADCAST_ID, &Instruction::BulkWrite(items))
    }

    /// Sync Read: `length` bytes at `address` from each servo, one reply each.
    ///
    /// # Errors
    ///
    /// See the type docs; the first servo that fails ends the read.
    pub fn sync_read(&mut self, address: u16, length: u16, ids: &[u8]) -> Result<Vec<Vec<u8>>> {
        check_ids(ids)?;
        self.send_instruction(
            BROADCAST_ID,
            &Instruction::SyncRead {
                address,
                length,
                ids: ids.to_vec(),
            },
        )?;
        let deadline = self.deadline();
        ids.iter()
            .map(|&id| {
                let data = self.expect_status(id, deadline, "sync read")?;
                check_len(id, "sync read", usize::from(length), data.len())?;
                Ok(data)
            })
            .collect()
    }

    /// Bulk Read: a different item from each servo, one reply each.
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::sync_read`].
    pub fn bulk_read(&mut self, items: &[BulkReadItem]) -> Result<Vec<Vec<u8>>> {
        if items.is_empty() {
            return Err(Error::InvalidArgument {
                message: "Bulk Read needs at least one item".into(),
            });
        }
        self.send_instruction(BROADCAST_ID, &Instruction::BulkRead(items.to_vec()))?;
        let deadline = self.deadline();
        items
            .iter()
            .map(|item| {
                let data = self.expect_status(item.id, deadline, "bulk read")?;
                check_len(item.id, "bulk read", usize::from(item.length), data.len())?;
                Ok(data)
            })
            .collect()
    }

    /// Fast Sync Read: `length` bytes at `address` from each servo in one combined
    /// reply, written into `out` (`ids.len() * length` bytes, servo by servo).
    ///
    /// # Errors
    ///
    /// See the type docs; every per-servo CRC and error byte is checked.
    pub fn fast_sync_read(
        &mut self,
        address: u16,
        length: u16,
        ids: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        check_ids(ids)?;
        let n = usize::from(length);
        if out.len() != ids.len() * n {
            return Err(Error::LengthMismatch {
                what: "fast sync read buffer",
                expected: ids.len() * n,
                got: out.len(),
            });
        }
        self.send_instruction(
            BROADCAST_ID,
            &Instruction::FastSyncRead {
                address,
                length,
                ids: ids.to_vec(),
            },
        )?;
        let p = self.receive(self.deadline(), None, "fast sync read")?;
        self.unpack_fast(&p, ids, &vec![n; ids.len()], out)
    }

    /// Fast Bulk Read: a different item from each servo in one combined reply,
    /// concatenated into the returned buffer in `items` order.
    ///
    /// # Errors
    ///
    /// As [`DynamixelBus::fast_sync_read`].
    pub fn fast_bulk_read(&mut self, items: &[BulkReadItem]) -> Result<Vec<Vec<u8>>> {
        if items.is_empty() {
            return Err(Error::InvalidArgument {
                message: "Fast Bulk Read needs at least one item".into(),
            });
        }
        self.send_instruction(BROADCAST_ID, &Instruction::FastBulkRead(items.to_vec()))?;
        let p = self.receive(self.deadline(), None, "fast bulk read")?;
        let ids: Vec<u8> = items.iter().map(|i| i.id).collect();
        let lengths: Vec<usize> = items.iter().map(|i| usize::from(i.length)).collect();
        let mut flat = vec![0u8; lengths.iter().sum()];
        self.unpack_fast(&p, &ids, &lengths, &mut flat)?;
        let mut out = Vec::with_capacity(items.len());
        let mut rest = flat.as_slice();
        for len in lengths {
            let (head, tail) = rest.split_at(len);
            out.push(head.to_vec());
            rest = tail;
        }
        Ok(out)
    }

    fn unpack_fast(&self, p: &Packet, ids: &[u8], lengths: &[usize], out: &mut [u8]) -> Result<()> {
        if p.id != BROADCAST_ID {
            return Err(Error::UnexpectedReply {
                message: format!(
                    "fast read: reply from servo {} instead of the broadcast ID",
                    p.id
                ),
            });
        }
        let entries = protocol::split_fast_read_reply(p, lengths)?;
        let mut offset = 0;
        for (entry, (&id, &len)) in entries.iter().zip(ids.iter().zip(lengths)) {
            if entry.id != id {
                return Err(Error::UnexpectedReply {
                    message: format!(
                        "fast read: part from servo {} where servo {id} was expected",
                        entry.id
                    ),
                });
            }
            check_error(id, entry.error)?;
            out[offset..offset + len].copy_from_slice(&entry.data);
            offset += len;
        }
        Ok(())
    }
}

fn parse_ping(id: u8, params: &[u8]) -> Result<PingReply> {
    match params {
        [lo, hi, fw] => Ok(PingReply {
            id,
            model: u16::from_le_bytes([*lo, *hi]),
            firmware: *fw,
        }),
        _ => Err(Error::Malformed {
            message: format!(
                "ping reply from servo {id} has {} parameters, expected 3",
                params.len()
            ),
        }),
    }
}

fn check_error(id: u8, byte: u8) -> Result<()> {
    if let Some(error) = StatusError::from_byte(byte) {
        return Err(Error::Status { id, error, byte });
    }
    if byte & protocol::ALERT_BIT != 0 {
        return Err(Error::HardwareError {
            id,
            hardware_error: 0,
        });
    }
    Ok(())
}

fn check_len(id: u8, operation: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Malformed {
            message: format!(
                "{operation} reply from servo {id} carries {got} bytes, expected {expected}"
            ),
        })
    }
}

fn check_ids(ids: &[u8]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::InvalidArgument {
            message: "no servo IDs given".into(),
        });
    }
    if let Some(id) = ids.iter().find(|&&id| id > protocol::MAX_ID) {
        return Err(Error::InvalidArgument {
            message: format!("servo ID {id} is out of range (0..=252)"),
        });
    }
    Ok(())
}
