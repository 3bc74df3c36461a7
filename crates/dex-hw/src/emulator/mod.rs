//! A servo-bus emulator: XC330-M288-T servos behind a Protocol 2.0 bus, with
//! the control table's access rules, a motor that moves like one, and fault
//! injection.
//!
//! [`ServoBus`] takes instruction bytes and returns reply bytes; it keeps its own
//! clock, advanced by the caller ([`ServoBus::advance`]). Two ways to reach it:
//!
//! - [`EmulatedPort`]: an in-process [`Transport`](crate::transport::Transport)
//!   whose clock is the wire time of the bytes exchanged (deterministic, for tests);
//! - `PtyEmulator` (Unix, feature `serial`): the bus on a pseudo-terminal, in real time, for any
//!   client that opens a serial port (the official ROBOTIS SDK included).

mod port;
#[cfg(all(unix, feature = "serial"))]
mod pty;
mod servo;

pub use port::EmulatedPort;
#[cfg(all(unix, feature = "serial"))]
pub use pty::PtyEmulator;
pub use servo::{MotorModel, Servo, ServoInfo};

use std::collections::{BTreeMap, BTreeSet};

use crate::control_table as ct;
use crate::protocol::{self, BROADCAST_ID, Instruction, Packet, PacketDecoder, StatusError, inst};

/// Faults the emulator injects, to test how a client copes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Probability that a reply is dropped entirely.
    pub drop_reply: f64,
    /// Probability that one byte of a reply is flipped.
    pub corrupt_reply: f64,
    /// Servos that do not answer at all (as if unplugged).
    pub missing_ids: BTreeSet<u8>,
    /// Extra delay before every reply (s), on top of Return Delay Time.
    pub reply_delay: f64,
    /// Garbage bytes sent before every reply.
    pub garbage_before_reply: usize,
}

/// Reply bytes and when to send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Delay after the instruction (µs): Return Delay Time plus injected delay.
    pub delay_us: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Counts of what the emulator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Instruction packets decoded.
    pub instructions: u64,
    /// Frames dropped for a bad CRC.
    pub crc_errors: u64,
    /// Replies sent.
    pub replies: u64,
    /// Replies dropped or corrupted on purpose.
    pub faults_injected: u64,
}

/// Emulated servos on one bus.
#[derive(Debug, Clone)]
pub struct ServoBus {
    servos: BTreeMap<u8, Servo>,
    decoder: PacketDecoder,
    /// Faults to inject.
    pub faults: Faults,
    rng: u64,
    time: f64,
    stats: BusStats,
}

impl Default for ServoBus {
    fn default() -> Self {
        Self::new()
    }
}

impl ServoBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            servos: BTreeMap::new(),
            decoder: PacketDecoder::new(),
            faults: Faults::default(),
            rng: 0x9E37_79B9_7F4A_7C15,
            time: 0.0,
            stats: BusStats::default(),
        }
    }

    /// A bus with XC330-M288-T servos of the given IDs, at the given output
    /// angles (rad; 0 if `angles` is shorter).
    pub fn with_servos(ids: impl IntoIterator<Item = u8>, angles: &[f64]) -> Self {
        let mut bus = Self::new();
        for (k, id) in ids.into_iter().enumerate() {
            let angle = angles.get(k).copied().unwrap_or(0.0);
            bus.servos
                .insert(id, Servo::new(id, ServoInfo::default(), angle));
        }
        bus
    }

    /// The 16 servos of a LEAP Hand (IDs 0–15), resting at the open pose (π rad,
    /// 2,048 ticks, as the real hand reads when flat).
    pub fn leap_hand() -> Self {
        Self::with_servos(0..16, &[std::f64::consts::PI; 16])
    }

    /// Seeds the fault-injection random numbers.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self
    }

    /// The servo with this ID.
    pub fn servo(&self, id: u8) -> Option<&Servo> {
        self.servos.get(&id)
    }

    /// The servo with this ID, mutable (to set loads, raise errors, change physics).
    pub fn servo_mut(&mut self, id: u8) -> Option<&mut Servo> {
        self.servos.get_mut(&id)
    }

    /// IDs on the bus.
    pub fn ids(&self) -> Vec<u8> {
        self.servos.keys().copied().collect()
    }

    /// Emulated time (s).
    pub fn time(&self) -> f64 {
        self.time
    }

    /// What the bus has seen.
    pub fn stats(&self) -> BusStats {
        self.stats
    }

    /// Advances every motor by `dt` seconds.
    pub fn advance(&mut self, dt: f64) {
        if dt > 0.0 {
            self.time += dt;
            for s in self.servos.values_mut() {
                s.advance(dt);
            }
        }
    }

    fn random(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Feeds received bytes; returns the replies, in order.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Reply> {
        self.decoder.push(bytes);
        let mut replies = Vec::new();
        while let Some(packet) = self.decoder.next_packet() {
            match packet {
                Ok(p) if !p.is_status() => {
                    self.stats.instructions += 1;
                    self.execute(&p, &mut replies);
                }
                Ok(_) => {} // another device's status packet: not for us
                Err(_) => self.stats.crc_errors += 1,
            }
        }
        replies.into_iter().filter_map(|r| self.inject(r)).collect()
    }

    fn inject(&mut self, mut reply: Reply) -> Option<Reply> {
        if self.faults.drop_reply > 0.0 && self.random() < self.faults.drop_reply {
            self.stats.faults_injected += 1;
            return None;
        }
        if self.faults.corrupt_reply > 0.0 && self.random() < self.faults.corrupt_reply {
            let i = (self.random() * reply.bytes.len() as f64) as usize;
            if let Some(b) = reply.bytes.get_mut(i) {
                *b ^= 0x5A;
                self.stats.faults_injected += 1;
            }
        }
        if self.faults.garbage_before_reply > 0 {
            let mut garbage: Vec<u8> = (0..self.faults.garbage_before_reply)
                .map(|_| (self.random() * 256.0) as u8)
                .collect();
            garbage.append(&mut reply.bytes);
            reply.bytes = garbage;
        }
        reply.delay_us += (self.faults.reply_delay * 1e6) as u64;
        self.stats.replies += 1;
        Some(reply)
    }

    /// Servos that hear and may answer an instruction to `id`.
    fn present(&self, id: u8) -> bool {
        self.servos.contains_key(&id) && !self.faults.missing_ids.contains(&id)
    }

    fn delay_us(&self, id: u8) -> u64 {
        self.servos
            .get(&id)
            .map_or(0, |s| 2 * s.get(ct::RETURN_DELAY_TIME) as u64)
    }

    /// Status packet from `id`, if its Status Return Level allows this instruction.
    fn status(&self, id: u8, code: u8, error: Option<StatusError>, params: &[u8]) -> Option<Reply> {
        let servo = self.servos.get(&id)?;
        let level = servo.get(ct::STATUS_RETURN_LEVEL);
        let allowed = match code {
            inst::PING => true,
            inst::READ
            | inst::SYNC_READ
            | inst::FAST_SYNC_READ
            | inst::BULK_READ
            | inst::FAST_BULK_READ => level >= 1,
            _ => level >= 2,
        };
        if !allowed {
            return None;
        }
        let byte = servo.alert() | error.map_or(0, StatusError::number);
        let params = if error.is_some() { &[][..] } else { params };
        let mut bytes = Vec::new();
        protocol::encode_status(&mut bytes, id, byte, params).ok()?;
        Some(Reply {
            delay_us: self.delay_us(id),
            bytes,
        })
    }

    fn execute(&mut self, p: &Packet, replies: &mut Vec<Reply>) {
        let broadcast = p.id == BROADCAST_ID;
        if !broadcast && !self.present(p.id) {
            return;
        }
        let targets: Vec<u8> = if broadcast {
            self.servos
                .keys()
                .copied()
                .filter(|id| !self.faults.missing_ids.contains(id))
                .collect()
        } else {
            vec![p.id]
        };
        for id in &targets {
            if let Some(s) = self.servos.get_mut(id) {
                s.heard();
            }
        }
        let instruction = match Instruction::parse(p.instruction, &p.params) {
            Ok(i) => i,
            Err(_) => {
                if !broadcast {
                    let known = matches!(
                        p.instruction,
                        inst::PING
                            | inst::READ
                            | inst::WRITE
                            | inst::REG_WRITE
                            | inst::ACTION
                            | inst::FACTORY_RESET
                            | inst::REBOOT
                            | inst::CLEAR
                            | inst::CONTROL_TABLE_BACKUP
                            | inst::SYNC_READ
                            | inst::SYNC_WRITE
                            | inst::FAST_SYNC_READ
                            | inst::BULK_READ
                            | inst::BULK_WRITE
                            | inst::FAST_BULK_READ
                    );
                    let e = if known {
                        StatusError::DataLength
                    } else {
                        StatusError::Instruction
                    };
                    replies.extend(self.status(p.id, p.instruction, Some(e), &[]));
                }
                return;
            }
        };
        let code = p.instruction;
        let may_change_ids = matches!(
            instruction,
            Instruction::Write { .. }
                | Instruction::SyncWrite { .. }
                | Instruction::BulkWrite(_)
                | Instruction::Action
        );
        self.dispatch(p, code, broadcast, targets, instruction, replies);
        if may_change_ids {
            self.renumber();
        }
    }

    fn dispatch(
        &mut self,
        p: &Packet,
        code: u8,
        broadcast: bool,
        targets: Vec<u8>,
        instruction: Instruction,
        replies: &mut Vec<Reply>,
    ) {
        match instruction {
            Instruction::Ping => {
                for id in targets {
                    let info = self.servos[&id].get(ct::MODEL_NUMBER) as u16;
                    let fw = self.servos[&id].get(ct::FIRMWARE_VERSION) as u8;
                    let [lo, hi] = info.to_le_bytes();
                    replies.extend(self.status(id, code, None, &[lo, hi, fw]));
                }
            }
            Instruction::Read { address, length } => {
                if broadcast {
                    return; // Read is not executed on broadcast.
                }
                let r = self.servos[&p.id].read(address, length);
                let (e, data) = split(r);
                replies.extend(self.status(p.id, code, e, &data));
            }
            Instruction::Write { address, data } => {
                for id in &targets {
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    let r = s.check_write(address, &data);
                    if r.is_ok() {
                        s.apply_write(address, &data);
                    }
                    if !broadcast {
                        replies.extend(self.status(*id, code, r.err(), &[]));
                    }
                }
            }
            Instruction::RegWrite { address, data } => {
                for id in &targets {
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    let r = s.check_write(address, &data);
                    if r.is_ok() {
                        s.register(address, data.clone());
                    }
                    if !broadcast {
                        replies.extend(self.status(*id, code, r.err(), &[]));
                    }
                }
            }
            Instruction::Action => {
                for id in &targets {
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    let r = s.action();
                    if !broadcast {
                        replies.extend(self.status(*id, code, r.err(), &[]));
                    }
                }
            }
            Instruction::FactoryReset { mode } => {
                if broadcast && mode == 0xFF {
                    return; // refused on broadcast
                }
                for id in &targets {
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    if s.torque_enabled() {
                        if !broadcast {
                            replies.extend(self.status(*id, code, Some(StatusError::Access), &[]));
                        }
                        continue;
                    }
                    if !broadcast {
                        replies.extend(self.status(*id, code, None, &[]));
                    }
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    s.factory_reset(mode != 0xFF, mode == 0x02);
                }
                self.renumber();
            }
            Instruction::Reboot => {
                for id in &targets {
                    if !broadcast {
                        replies.extend(self.status(*id, code, None, &[]));
                    }
                    if let Some(s) = self.servos.get_mut(id) {
                        s.reboot();
                    }
                }
            }
            Instruction::Clear { .. } | Instruction::ControlTableBackup { .. } => {
                for id in &targets {
                    let moving = self.servos[id].speed().abs() > 1e-3;
                    let torque = self.servos[id].torque_enabled();
                    let e = match instruction {
                        Instruction::Clear { .. } if moving => Some(StatusError::ResultFail),
                        Instruction::ControlTableBackup { .. } if torque => {
                            Some(StatusError::Access)
                        }
                        _ => None,
                    };
                    if !broadcast {
                        replies.extend(self.status(*id, code, e, &[]));
                    }
                }
            }
            Instruction::SyncRead {
                address,
                length,
                ids,
            } => {
                if !broadcast {
                    return;
                }
                for id in ids {
                    if !self.present(id) {
                        continue;
                    }
                    let (e, data) = split(self.servos[&id].read(address, length));
                    replies.extend(self.status(id, code, e, &data));
                }
            }
            Instruction::BulkRead(items) => {
                if !broadcast {
                    return;
                }
                for item in items {
                    if !self.present(item.id) {
                        continue;
                    }
                    let (e, data) = split(self.servos[&item.id].read(item.address, item.length));
                    replies.extend(self.status(item.id, code, e, &data));
                }
            }
            Instruction::FastSyncRead {
                address,
                length,
                ids,
            } => {
                if broadcast {
                    let items: Vec<_> = ids.iter().map(|&id| (id, address, length)).collect();
                    self.fast_read(&items, replies);
                }
            }
            Instruction::FastBulkRead(items) => {
                if broadcast {
                    let items: Vec<_> = items.iter().map(|i| (i.id, i.address, i.length)).collect();
                    self.fast_read(&items, replies);
                }
            }
            Instruction::SyncWrite {
                address,
                length,
                ids,
                data,
            } => {
                for (id, chunk) in ids.iter().zip(data.chunks_exact(usize::from(length))) {
                    if !self.present(*id) {
                        continue;
                    }
                    let Some(s) = self.servos.get_mut(id) else {
                        continue;
                    };
                    s.heard();
                    if s.check_write(address, chunk).is_ok() {
                        s.apply_write(address, chunk);
                    }
                }
            }
            Instruction::BulkWrite(items) => {
                for item in items {
                    if !self.present(item.id) {
                        continue;
                    }
                    let Some(s) = self.servos.get_mut(&item.id) else {
                        continue;
                    };
                    s.heard();
                    if s.check_write(item.address, &item.data).is_ok() {
                        s.apply_write(item.address, &item.data);
                    }
                }
            }
        }
    }

    /// One combined reply; a missing servo leaves the reply truncated where its
    /// part would be (the client then times out), as on a real bus.
    fn fast_read(&mut self, items: &[(u8, u16, u16)], replies: &mut Vec<Reply>) {
        let mut parts: Vec<(u8, u8, Vec<u8>)> = Vec::with_capacity(items.len());
        let mut truncated = false;
        for &(id, address, length) in items {
            if !self.present(id) {
                truncated = true;
                break;
            }
            let s = &self.servos[&id];
            match s.read(address, length) {
                Ok(data) => parts.push((s.alert(), id, data)),
                Err(e) => parts.push((s.alert() | e.number(), id, vec![0; usize::from(length)])),
            }
        }
        if parts.is_empty() {
            return;
        }
        let entries: Vec<(u8, u8, &[u8])> = parts
            .iter()
            .map(|(e, id, d)| (*e, *id, d.as_slice()))
            .collect();
        let mut bytes = Vec::new();
        if protocol::encode_fast_read_reply(&mut bytes, &entries).is_err() {
            return;
        }
        if truncated {
            // The missing servo never sends its part: cut the packet before the final CRC.
            bytes.truncate(bytes.len() - 2);
        }
        let delay = self.delay_us(items[0].0);
        replies.push(Reply {
            delay_us: delay,
            bytes,
        });
    }

    /// Re-keys servos after a factory reset may have changed IDs.
    fn renumber(&mut self) {
        if self.servos.iter().all(|(id, s)| *id == s.id()) {
            return;
        }
        let servos = std::mem::take(&mut self.servos);
        for (_, s) in servos {
            self.servos.insert(s.id(), s);
        }
    }
}

fn split(r: Result<Vec<u8>, StatusError>) -> (Option<StatusError>, Vec<u8>) {
    match r {
        Ok(d) => (None, d),
        Err(e) => (Some(e), Vec::new()),
    }
}
