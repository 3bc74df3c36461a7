//! Emulated servos whose shafts belong to an outside physics engine.
//!
//! A [`ServoBus`](super::ServoBus) normally moves each servo with its own motor
//! model. Given a [`JointPhysics`] (see [`ServoBus::with_physics`](super::ServoBus::with_physics)),
//! the bus instead hands the servos' goal positions to that engine as joint position
//! targets, and reports the engine's joint positions, velocities and efforts as the
//! servos' Present Position, Velocity and Current. With the `sim` feature,
//! [`SimJoints`] connects any [`dex_sim::Simulator`]: a simulated hand behind a real
//! Protocol 2.0 bus, for testing driver code without hardware.

use dex_core::JointState;

use crate::error::Result;

/// A physics engine driving the joints behind the servos.
///
/// Joint `i` of the engine is driven by the servo at position `i` of
/// the link's servo ids ([`PhysicsLink`]). Angles are joint radians (the engine's convention); the
/// link converts them to and from servo angles.
pub trait JointPhysics: Send {
    /// Number of joints.
    fn dof(&self) -> usize;

    /// Seconds of physics one [`JointPhysics::step`] advances.
    fn period(&self) -> f64;

    /// Sets position targets (rad) and which joints have torque; a joint without
    /// torque goes limp.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Physics`] with the engine's error if it refuses the targets (the bus
    /// keeps its old ones).
    fn set_targets(&mut self, targets: &[f64], torque_on: &[bool]) -> Result<()>;

    /// Advances the physics by one [`JointPhysics::period`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::Physics`] with the engine's error if it fails (the bus then stops
    /// stepping it).
    fn step(&mut self) -> Result<()>;

    /// Joint positions (rad), velocities (rad/s) and efforts (N·m).
    fn joint_state(&self) -> JointState;

    /// Sets the torque (N·m) on each joint for the next [`JointPhysics::step`]: how the
    /// bus drives an engine under [`ServoActuation`] (the servos' own control law,
    /// computed by the bus). The default refuses: an engine that takes position
    /// targets only.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] by default; [`crate::Error::Physics`] with the
    /// engine's error.
    fn set_efforts(&mut self, efforts: &[f64]) -> Result<()> {
        let _ = efforts;
        Err(crate::Error::InvalidArgument {
            message: "this physics takes position targets, not joint torques".into(),
        })
    }
}

/// The servos drive the engine's joints with torques from their own control law
/// (position PID on ticks, current cap, torque–speed line) instead of handing it
/// position targets, with the ways a real servo chain differs from its model as
/// settings. See [`ServoBus::with_servo_actuation`](super::ServoBus::with_servo_actuation).
#[derive(Debug, Clone, PartialEq)]
pub struct ServoActuation {
    /// Physics steps between a goal reaching a servo and the servo acting on it.
    pub latency_steps: usize,
    /// Free play (rad): the control law ignores position errors within ±half of it,
    /// so the joint floats in the gap under outside loads.
    pub backlash: f64,
    /// Factor on each servo's P, I and D gains (gain errors), one per joint; empty
    /// for none.
    pub gain_scale: Vec<f64>,
}

impl Default for ServoActuation {
    fn default() -> Self {
        Self {
            latency_steps: 0,
            backlash: 0.0,
            gain_scale: Vec::new(),
        }
    }
}

/// The state of a [`ServoActuation`] on a bus.
#[derive(Debug, Clone)]
pub(crate) struct ServoDrive {
    pub(crate) settings: ServoActuation,
    /// Goal positions (ticks) of the last `latency_steps` physics steps, oldest first.
    pub(crate) goals: std::collections::VecDeque<Vec<f64>>,
}

/// When the physics advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhysicsClock {
    /// With the bus's clock ([`ServoBus::advance`](super::ServoBus::advance)): in real
    /// time on a pseudo-terminal. Goals take effect at the next physics step.
    #[default]
    BusTime,
    /// One physics period per instruction that writes Goal Position (a control tick),
    /// whatever the wall clock says: the same byte stream gives the same motion, bit
    /// for bit, however fast the client runs.
    PerGoalWrite,
    /// As [`PhysicsClock::PerGoalWrite`], this many physics periods per goal write: a
    /// fine physics step under a coarser control tick (a 1 ms servo loop, 20 Hz
    /// commands: 50).
    StepsPerGoalWrite(usize),
}

impl PhysicsClock {
    /// Physics periods per goal write (0 on bus time).
    pub(crate) fn steps_per_goal(self) -> usize {
        match self {
            Self::BusTime => 0,
            Self::PerGoalWrite => 1,
            Self::StepsPerGoalWrite(n) => n,
        }
    }
}

/// How the servos map onto the engine's joints.
pub struct PhysicsLink {
    /// The engine.
    pub(crate) physics: Box<dyn JointPhysics>,
    /// Servo ID of each joint.
    pub(crate) ids: Vec<u8>,
    /// Servo angle of joint `i` = joint angle + `zero[i]` (rad).
    pub(crate) zero: Vec<f64>,
    /// Torque per ampere (N·m/A), to report effort as current.
    pub(crate) torque_constant: f64,
    pub(crate) clock: PhysicsClock,
    /// The engine's period (s), read once.
    pub(crate) period: f64,
    /// Bus time not yet simulated (s), for [`PhysicsClock::BusTime`].
    pub(crate) pending: f64,
    /// Physics steps taken.
    pub(crate) steps: u64,
    /// The first error of the engine; once set, the physics is frozen.
    pub(crate) failure: Option<String>,
    /// Torques from the servos' control law instead of position targets.
    pub(crate) servo_drive: Option<ServoDrive>,
}

impl std::fmt::Debug for PhysicsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicsLink")
            .field("ids", &self.ids)
            .field("clock", &self.clock)
            .field("steps", &self.steps)
            .field("failure", &self.failure)
            .finish()
    }
}

#[cfg(feature = "sim")]
mod sim {
    use std::sync::{Arc, Mutex, MutexGuard};

    use dex_core::JointState;
    use dex_sim::Simulator;

    use super::JointPhysics;
    use crate::error::{Error, Result};

    fn physics_error(e: dex_sim::Error) -> Error {
        Error::Physics {
            source: Box::new(e),
        }
    }

    /// A simulator shared between the bus that steps it and whoever looks at its scene.
    pub type SharedSimulator = Arc<Mutex<Box<dyn Simulator>>>;

    /// A [`dex_sim::Simulator`] as the physics behind a servo bus.
    ///
    /// The simulator is shared: keep a [`SimJoints::handle`] to look at the scene
    /// (objects, contacts, rendering) or to change it (gravity, object poses) while the
    /// bus runs. Lock order: the bus, then the simulator; code holding the simulator
    /// must not wait for the bus.
    pub struct SimJoints {
        sim: SharedSimulator,
        kp: Vec<f64>,
        kd: Vec<f64>,
        torque: Vec<bool>,
    }

    impl std::fmt::Debug for SimJoints {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SimJoints")
                .field("torque", &self.torque)
                .finish()
        }
    }

    impl SimJoints {
        /// Wraps `sim`. A joint with torque on gets the model's nominal PD gains
        /// ([`dex_sim::nominal_pd_gains`]), one without gets Kp = 0 (limp, damped).
        pub fn new(sim: Box<dyn Simulator>) -> Self {
            let (kp, kd) = dex_sim::nominal_pd_gains(sim.model());
            let dof = kp.len();
            Self {
                sim: Arc::new(Mutex::new(sim)),
                kp,
                kd,
                torque: vec![true; dof],
            }
        }

        /// Wraps `sim` for a bus that drives the joints with torques
        /// ([`super::ServoActuation`]): the engine's PD is switched off (zero gains) and
        /// each joint gets the geared motor's reflected inertia as armature and its
        /// viscous friction on top of the model's damping (the [`MotorModel`]'s figures).
        ///
        /// # Errors
        ///
        /// [`Error::Physics`] if the backend has no torque control or armature (the
        /// kinematic mock has neither).
        ///
        /// [`MotorModel`]: crate::emulator::MotorModel
        pub fn torque_driven(
            mut sim: Box<dyn Simulator>,
            motor: &crate::emulator::servo::MotorModel,
        ) -> Result<Self> {
            let dof = sim.model().dof();
            let damping: Vec<f64> = sim
                .model()
                .dof_joints()
                .map(|j| j.dynamics.damping + motor.viscous_friction)
                .collect();
            sim.set_pd_gains(&vec![0.0; dof], &vec![0.0; dof])
                .map_err(physics_error)?;
            sim.set_joint_efforts(&vec![0.0; dof])
                .map_err(physics_error)?;
            sim.set_joint_armature(&vec![motor.inertia; dof])
                .map_err(physics_error)?;
            sim.set_joint_damping(&damping).map_err(physics_error)?;
            Ok(Self {
                sim: Arc::new(Mutex::new(sim)),
                kp: vec![0.0; dof],
                kd: vec![0.0; dof],
                torque: vec![true; dof],
            })
        }

        /// The shared simulator.
        pub fn handle(&self) -> SharedSimulator {
            Arc::clone(&self.sim)
        }

        fn lock(&self) -> MutexGuard<'_, Box<dyn Simulator>> {
            self.sim.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl JointPhysics for SimJoints {
        fn dof(&self) -> usize {
            self.kp.len()
        }

        fn period(&self) -> f64 {
            self.lock().config().control_period()
        }

        fn set_targets(&mut self, targets: &[f64], torque_on: &[bool]) -> Result<()> {
            let mut sim = self.sim.lock().unwrap_or_else(|e| e.into_inner());
            if torque_on != self.torque.as_slice() {
                // No torque: no stiffness; the joint keeps its damping and the PD's Kd
                // as a stand-in for the motor's back-EMF braking.
                let kp: Vec<f64> = self
                    .kp
                    .iter()
                    .zip(torque_on)
                    .map(|(k, on)| if *on { *k } else { 0.0 })
                    .collect();
                sim.set_pd_gains(&kp, &self.kd).map_err(physics_error)?;
                self.torque = torque_on.to_vec();
            }
            sim.set_joint_targets(targets).map_err(physics_error)
        }

        fn step(&mut self) -> Result<()> {
            self.lock().step().map_err(physics_error)
        }

        fn joint_state(&self) -> JointState {
            self.lock().joint_state()
        }

        fn set_efforts(&mut self, efforts: &[f64]) -> Result<()> {
            self.lock()
                .set_joint_efforts(efforts)
                .map_err(physics_error)
        }
    }
}

#[cfg(feature = "sim")]
pub use sim::{SharedSimulator, SimJoints};
