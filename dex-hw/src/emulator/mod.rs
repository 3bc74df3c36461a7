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

#[cfg(feature = "sim")]
mod gap;
mod physics;
mod port;
#[cfg(all(unix, feature = "serial"))]
mod pty;
mod servo;

#[cfg(feature = "sim")]
pub use gap::{GapConfig, gap_hand, gap_hand_shared};
pub use physics::{JointPhysics, PhysicsClock, PhysicsLink, ServoActuation};
#[cfg(feature = "sim")]
pub use physics::{SharedSimulator, SimJoints};
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
#[derive(Debug)]
pub struct ServoBus {
    servos: BTreeMap<u8, Servo>,
    decoder: PacketDecoder,
    /// Faults to inject.
    pub faults: Faults,
    rng: u64,
    time: f64,
    stats: BusStats,
    physics: Option<PhysicsLink>,
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
            physics: None,
        }
    }

    /// Hands the servos' shafts to `physics`: joint `i` is driven by servo `ids[i]`,
    /// whose angle reads joint angle + `zero[i]` (rad; the LEAP Hand's servos read
    /// π at the open pose, so `zero` is π plus the calibration offset). Goal
    /// positions become the engine's targets, torque off makes a joint limp, and
    /// Present Position, Velocity and Current report the engine's joint state
    /// (current = effort / `torque_constant`). The servos' own motor models,
    /// gains and current caps are then not used.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] if the lengths disagree with the engine's
    /// joints, an ID is not on the bus or repeats, or a number is not finite and
    /// positive where it must be.
    pub fn with_physics(
        mut self,
        physics: Box<dyn JointPhysics>,
        ids: &[u8],
        zero: &[f64],
        torque_constant: f64,
        clock: PhysicsClock,
    ) -> crate::Result<Self> {
        let bad = |message: String| Err(crate::Error::InvalidArgument { message });
        let dof = physics.dof();
        if ids.len() != dof || zero.len() != dof {
            return bad(format!(
                "the physics has {dof} joints: got {} servo IDs and {} zero angles",
                ids.len(),
                zero.len()
            ));
        }
        let unique: BTreeSet<u8> = ids.iter().copied().collect();
        if unique.len() != ids.len() {
            return bad(format!("servo IDs repeat: {ids:?}"));
        }
        if let Some(id) = ids.iter().find(|id| !self.servos.contains_key(id)) {
            return bad(format!("servo {id} is not on the bus"));
        }
        if zero.iter().any(|z| !z.is_finite()) {
            return bad("zero angles must be finite".into());
        }
        if !(torque_constant.is_finite() && torque_constant > 0.0) {
            return bad(format!(
                "the torque constant must be positive, got {torque_constant}"
            ));
        }
        let period = physics.period();
        if !(period.is_finite() && period > 0.0) {
            return bad(format!("the physics period must be positive, got {period}"));
        }
        self.physics = Some(PhysicsLink {
            physics,
            ids: ids.to_vec(),
            zero: zero.to_vec(),
            torque_constant,
            clock,
            period,
            pending: 0.0,
            steps: 0,
            failure: None,
            servo_drive: None,
        });
        self.push_physics_state();
        for &id in ids {
            if let Some(s) = self.servos.get_mut(&id) {
                s.hold_present();
            }
        }
        Ok(self)
    }

    /// Physics steps taken so far (0 without physics).
    pub fn physics_steps(&self) -> u64 {
        self.physics.as_ref().map_or(0, |p| p.steps)
    }

    /// Drives the physics with the servos' own control law: every physics step, each
    /// servo computes its output torque from its control table (position PID, Goal
    /// Current cap, Current Limit, torque–speed line: the motor model's law) at the
    /// engine's joint angle and speed, with `actuation`'s latency, backlash and gain
    /// errors, and the engine applies it ([`JointPhysics::set_efforts`]). Without this
    /// the engine's own PD follows the goal positions.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] without physics, for a gain scale of another
    /// length or a negative, non-finite setting.
    pub fn with_servo_actuation(mut self, actuation: ServoActuation) -> crate::Result<Self> {
        let bad = |message: String| Err(crate::Error::InvalidArgument { message });
        let Some(link) = &mut self.physics else {
            return bad("servo actuation needs a physics engine (with_physics)".into());
        };
        if !actuation.gain_scale.is_empty() && actuation.gain_scale.len() != link.ids.len() {
            return bad(format!(
                "{} gain scales for {} joints",
                actuation.gain_scale.len(),
                link.ids.len()
            ));
        }
        if !(actuation.backlash.is_finite() && actuation.backlash >= 0.0)
            || actuation
                .gain_scale
                .iter()
                .any(|g| !(g.is_finite() && *g >= 0.0))
        {
            return bad(format!(
                "backlash and gain scales must be finite and ≥ 0: {actuation:?}"
            ));
        }
        link.servo_drive = Some(physics::ServoDrive {
            settings: actuation,
            goals: std::collections::VecDeque::new(),
        });
        Ok(self)
    }

    /// The physics engine's first error, if it failed (it is then frozen).
    pub fn physics_failure(&self) -> Option<&str> {
        self.physics.as_ref().and_then(|p| p.failure.as_deref())
    }

    /// Copies the engine's joint state into the servos' present values.
    fn push_physics_state(&mut self) {
        let Some(link) = &self.physics else {
            return;
        };
        let js = link.physics.joint_state();
        for (i, id) in link.ids.iter().enumerate() {
            if let Some(s) = self.servos.get_mut(id) {
                let q = js.q.get(i).copied().unwrap_or(0.0);
                let qd = js.qdot.get(i).copied().unwrap_or(0.0);
                let tau = js.effort.get(i).copied().unwrap_or(0.0);
                s.set_measured(q + link.zero[i], qd, tau / link.torque_constant);
            }
        }
    }

    /// Hands the servos' goals and torque flags to the physics (or, under servo
    /// actuation, their torques); `false` if it is frozen.
    fn apply_physics_targets(&mut self) -> bool {
        let Some(link) = &mut self.physics else {
            return false;
        };
        if link.failure.is_some() {
            return false;
        }
        if let Some(drive) = &mut link.servo_drive {
            let mut goals = Vec::with_capacity(link.ids.len());
            for id in &link.ids {
                match self.servos.get(id) {
                    Some(s) => goals.push(s.drive().goal),
                    None => {
                        let e = format!("servo {id} left the bus (its ID was changed)");
                        tracing::warn!("servo emulator: the physics is frozen: {e}");
                        link.failure = Some(e);
                        return false;
                    }
                }
            }
            drive.goals.push_back(goals);
            while drive.goals.len() > drive.settings.latency_steps + 1 {
                drive.goals.pop_front();
            }
            let delayed = drive.goals.front().cloned().unwrap_or_default();
            let dead_band = drive.settings.backlash / 2.0 / ct::RAD_PER_TICK;
            let mut efforts = Vec::with_capacity(link.ids.len());
            for (i, id) in link.ids.iter().enumerate() {
                if let Some(s) = self.servos.get_mut(id) {
                    let mut d = s.drive();
                    d.goal = delayed.get(i).copied().unwrap_or(d.goal);
                    d.dead_band = dead_band;
                    if let Some(g) = drive.settings.gain_scale.get(i) {
                        d.kp *= g;
                        d.ki *= g;
                        d.kd *= g;
                    }
                    efforts.push(s.drive_torque(&d, link.period));
                }
            }
            if let Err(e) = link.physics.set_efforts(&efforts) {
                tracing::warn!("servo emulator: the physics refused torques and is frozen: {e}");
                link.failure = Some(e.to_string());
                return false;
            }
            return true;
        }
        let mut targets = Vec::with_capacity(link.ids.len());
        let mut torque = Vec::with_capacity(link.ids.len());
        for (i, id) in link.ids.iter().enumerate() {
            let Some(s) = self.servos.get(id) else {
                let e = format!("servo {id} left the bus (its ID was changed)");
                tracing::warn!("servo emulator: the physics is frozen: {e}");
                link.failure = Some(e);
                return false;
            };
            targets.push(s.goal_angle() - link.zero[i]);
            torque.push(s.torque_enabled() && !s.watchdog_stopped());
        }
        if let Err(e) = link.physics.set_targets(&targets, &torque) {
            tracing::warn!("servo emulator: the physics refused targets and is frozen: {e}");
            link.failure = Some(e.to_string());
            return false;
        }
        true
    }

    /// One physics step with the servos' present goals; then the servos report it.
    fn step_physics(&mut self) {
        if !self.apply_physics_targets() {
            return;
        }
        let Some(link) = &mut self.physics else {
            return;
        };
        match link.physics.step() {
            Ok(()) => link.steps += 1,
            Err(e) => {
                tracing::warn!("servo emulator: the physics failed and is frozen: {e}");
                link.failure = Some(e.to_string());
            }
        }
        self.push_physics_state();
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

    /// A LEAP Hand whose 16 joints are `physics`'s (joint `i` on servo ID `i`, servo
    /// angle = joint angle + π, as [`crate::LeapHand`] with zero calibration offsets
    /// expects; current from effort with the XC330-M288-T's 0.93 N·m / 1.80 A).
    ///
    /// # Errors
    ///
    /// As [`ServoBus::with_physics`] (a physics without 16 joints).
    pub fn leap_hand_with_physics(
        physics: Box<dyn JointPhysics>,
        clock: PhysicsClock,
    ) -> crate::Result<Self> {
        let zero = [std::f64::consts::PI; 16];
        let ids: Vec<u8> = (0..16).collect();
        Self::leap_hand().with_physics(physics, &ids, &zero, 0.93 / 1.80, clock)
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
    ///
    /// With physics ([`ServoBus::with_physics`]) on [`PhysicsClock::BusTime`], the
    /// physics takes as many whole periods as fit in the time elapsed; on
    /// [`PhysicsClock::PerGoalWrite`] only the servos' clocks (watchdog, Realtime
    /// Tick) advance.
    pub fn advance(&mut self, dt: f64) {
        if dt > 0.0 {
            self.time += dt;
            let external: &[u8] = self.physics.as_ref().map_or(&[], |p| &p.ids);
            for (id, s) in &mut self.servos {
                if external.contains(id) {
                    s.advance_clock(dt);
                } else {
                    s.advance(dt);
                }
            }
            let mut due = 0;
            if let Some(link) = &mut self.physics
                && link.clock == PhysicsClock::BusTime
            {
                let period = link.period;
                link.pending += dt;
                due = (link.pending / period).floor() as usize;
                link.pending -= due as f64 * period;
            }
            for _ in 0..due {
                self.step_physics();
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
        let writes = |item: ct::Item| {
            let covers = |address: u16, len: usize| {
                address <= item.address
                    && usize::from(item.address + item.size) <= usize::from(address) + len
            };
            match &instruction {
                Instruction::Write { address, data } => covers(*address, data.len()),
                Instruction::SyncWrite {
                    address, length, ..
                } => covers(*address, usize::from(*length)),
                Instruction::BulkWrite(items) => {
                    items.iter().any(|i| covers(i.address, i.data.len()))
                }
                // A held Reg Write may be a goal or a torque change.
                Instruction::Action => true,
                _ => false,
            }
        };
        let writes_goal = writes(ct::GOAL_POSITION);
        // Reboot and factory reset turn torque off without writing it.
        let writes_torque = writes(ct::TORQUE_ENABLE)
            || matches!(
                instruction,
                Instruction::Reboot | Instruction::FactoryReset { .. }
            );
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
        let Some(clock) = self.physics.as_ref().map(|l| l.clock) else {
            return;
        };
        if writes_goal && clock.steps_per_goal() > 0 {
            for _ in 0..clock.steps_per_goal() {
                self.step_physics();
            }
        } else if writes_torque {
            // Torque on or off takes effect at once (limp, or holding the goal).
            self.apply_physics_targets();
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
