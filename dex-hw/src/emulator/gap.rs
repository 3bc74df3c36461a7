//! The "real" hand: a simulated LEAP Hand whose joints are driven by the emulated
//! servos' control law, with the ways a real hand differs from its model as settings.

use dex_sim::{ObjectSpec, Simulator};
use serde::{Deserialize, Serialize};

use super::physics::{ServoActuation, SharedSimulator, SimJoints};
use super::{MotorModel, PhysicsClock, ServoBus};
use crate::error::{Error, Result};

/// How far the stand-in for a real hand is from the ideal simulation, beyond the servo
/// model itself (which already differs from dex-sim's PD joints: the LEAP driver's
/// gains in the servos' units, the 350 mA current cap, the torque–speed line, the
/// geared motor's reflected inertia and viscous friction). Read from TOML
/// (`dex hw emulate --gap GAP.toml`); every key is optional, and
/// [`GapConfig::default`] is the gap dex's figures use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GapConfig {
    /// Physics step of the hand (s); the servos' control law runs once per step.
    pub physics_dt: f64,
    /// Steps between a goal reaching a servo and the servo acting on it (default 8,
    /// 8 ms at 1 ms steps: between an FTDI adapter's default 16 ms latency timer and a
    /// tuned 1 ms).
    pub latency_ticks: usize,
    /// Dry friction added to every joint (N·m; default 0.03, 3% of the servo's stall
    /// torque: the gear train's).
    pub joint_friction: f64,
    /// Free play of every joint (rad; default 0.01, about twice a new X-series
    /// gearbox's 0.25°).
    pub backlash: f64,
    /// Each servo's P, I and D gains are scaled by a factor drawn from
    /// `U(1 − gain_error, 1 + gain_error)` (default 0.2).
    pub gain_error: f64,
    /// Seed of the gain errors.
    pub seed: u64,
    /// Mass added to the object (kg; default 0.05).
    pub payload: f64,
    /// Factor on the object's friction (default 0.7).
    pub friction_scale: f64,
}

impl Default for GapConfig {
    fn default() -> Self {
        Self {
            physics_dt: 0.001,
            latency_ticks: 8,
            joint_friction: 0.03,
            backlash: 0.01,
            gain_error: 0.2,
            seed: 0,
            payload: 0.05,
            friction_scale: 0.7,
        }
    }
}

impl GapConfig {
    /// No gap beyond the servo model itself.
    pub fn zero() -> Self {
        Self {
            latency_ticks: 0,
            joint_friction: 0.0,
            backlash: 0.0,
            gain_error: 0.0,
            payload: 0.0,
            friction_scale: 1.0,
            ..Self::default()
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a step that is not positive, a negative or
    /// non-finite value, or a gain error of 1 or more.
    pub fn validate(&self) -> Result<()> {
        let finite = [
            self.physics_dt,
            self.joint_friction,
            self.backlash,
            self.gain_error,
            self.payload,
            self.friction_scale,
        ];
        if finite.iter().any(|v| !(v.is_finite() && *v >= 0.0))
            || self.physics_dt <= 0.0
            || self.gain_error >= 1.0
        {
            return Err(Error::InvalidArgument {
                message: format!(
                    "gap: physics_dt > 0, gain_error in [0, 1) and non-negative finite values needed: {self:?}"
                ),
            });
        }
        Ok(())
    }

    /// `object` as the gap hand holds it: heavier by the payload, its friction scaled.
    pub fn object(&self, object: &ObjectSpec) -> ObjectSpec {
        ObjectSpec {
            mass: object.mass + self.payload,
            friction: object.friction * self.friction_scale,
            ..object.clone()
        }
    }

    /// The per-joint gain factors for `dof` joints (deterministic in `seed`).
    pub fn gain_scales(&self, dof: usize) -> Vec<f64> {
        let mut state = self.seed ^ 0x9E37_79B9_7F4A_7C15;
        (0..dof)
            .map(|_| {
                // splitmix64
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let u = (z >> 11) as f64 / (1u64 << 53) as f64;
                1.0 + self.gain_error * (2.0 * u - 1.0)
            })
            .collect()
    }

    /// The servo actuation of this gap for `dof` joints.
    pub fn actuation(&self, dof: usize) -> ServoActuation {
        ServoActuation {
            latency_steps: self.latency_ticks,
            backlash: self.backlash,
            gain_scale: self.gain_scales(dof),
        }
    }
}

/// The gap hand: `sim` (a LEAP Hand scene whose `SimConfig::dt` is
/// `gap.physics_dt` and `substeps` 1; objects already passed through
/// [`GapConfig::object`]) with every joint driven by its XC330's control law
/// ([`SimJoints::torque_driven`], [`ServoBus::with_servo_actuation`]), extra joint
/// friction, latency, backlash and gain errors, behind an emulated bus on `clock`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a bad gap or a simulation whose step is not the gap's;
/// [`Error::Physics`] if the backend cannot take torques, friction or armature.
pub fn gap_hand(sim: Box<dyn Simulator>, gap: &GapConfig, clock: PhysicsClock) -> Result<ServoBus> {
    gap_hand_shared(sim, gap, clock).map(|(bus, _)| bus)
}

/// [`gap_hand`], with a handle on the simulation behind the bus: what stands in for a
/// motion-capture system and a person putting the object back (reading and placing
/// the object between episodes). Lock it only between bus transactions.
///
/// # Errors
///
/// As [`gap_hand`].
pub fn gap_hand_shared(
    mut sim: Box<dyn Simulator>,
    gap: &GapConfig,
    clock: PhysicsClock,
) -> Result<(ServoBus, SharedSimulator)> {
    gap.validate()?;
    let config = sim.config();
    if (config.dt - gap.physics_dt).abs() > 1e-12 || config.substeps != 1 {
        return Err(Error::InvalidArgument {
            message: format!(
                "the gap hand steps its physics every {} s, one step per period: the simulation has dt {} and {} substeps",
                gap.physics_dt, config.dt, config.substeps
            ),
        });
    }
    let friction: Vec<f64> = sim
        .model()
        .dof_joints()
        .map(|j| j.dynamics.friction + gap.joint_friction)
        .collect();
    sim.set_joint_friction(&friction)
        .map_err(|e| Error::Physics {
            source: Box::new(e),
        })?;
    let dof = friction.len();
    let joints = SimJoints::torque_driven(sim, &MotorModel::default())?;
    let handle = joints.handle();
    let bus = ServoBus::leap_hand_with_physics(Box::new(joints), clock)?
        .with_servo_actuation(gap.actuation(dof))?;
    Ok((bus, handle))
}
