//! A position-controlled 6-DoF wrist that carries the hand: the arm abstracted away to
//! its reach, speed and stiffness (Dex4D mounts its LEAP hand on an xArm6).
//!
//! The wrist has six coordinates `w = (x, y, z, yaw, pitch, roll)`: the palm's pose
//! (the hand's root link) is `hand_pose · T(x, y, z) · Rz(yaw) · Ry(pitch) · Rx(roll)`,
//! so [`crate::SimConfig::hand_pose`] is the palm at `w = 0` (the wrist's base frame).
//! A simulator with a wrist drives each coordinate by a stiff PD toward a target that
//! moves toward the requested one no faster than [`WristConfig::max_speed`]; targets
//! outside [`WristConfig::lower`]..[`WristConfig::upper`] are clamped, as an arm
//! controller would.

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of the wrist.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WristConfig {
    /// Lower limits of `(x, y, z)` (m) and `(yaw, pitch, roll)` (rad).
    pub lower: [f64; 6],
    /// Upper limits, same order.
    pub upper: [f64; 6],
    /// Largest speed of each coordinate (m/s, rad/s).
    pub max_speed: [f64; 6],
    /// PD stiffness of the translations (N/m) and the rotations (N·m/rad).
    pub stiffness: [f64; 2],
    /// PD damping of the translations (N·s/m) and the rotations (N·m·s/rad).
    pub damping: [f64; 2],
    /// Largest force (N) and torque (N·m) of the drives.
    pub max_effort: [f64; 2],
}

impl Default for WristConfig {
    /// A tabletop arm's reach around the base (±0.3 m across, 0.5 m up and 0.1 m down,
    /// rotations within ±3 rad), 0.5 m/s and 2 rad/s (an xArm6 moves its tool up to
    /// 1 m/s and its joints up to π rad/s, by its data sheet), drives stiff enough that the
    /// LEAP hand's weight sags the wrist about 2 mm and a few milliradians (5,000 N/m,
    /// 200 N·m/rad) and damped near critically.
    fn default() -> Self {
        Self {
            lower: [-0.3, -0.3, -0.1, -3.0, -3.0, -3.0],
            upper: [0.3, 0.3, 0.5, 3.0, 3.0, 3.0],
            max_speed: [0.5, 0.5, 0.5, 2.0, 2.0, 2.0],
            stiffness: [5000.0, 200.0],
            damping: [150.0, 2.0],
            max_effort: [200.0, 20.0],
        }
    }
}

impl WristConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |what: &'static str, reason: String| Err(Error::InvalidParameter { what, reason });
        for i in 0..6 {
            if !(self.lower[i].is_finite() && self.upper[i].is_finite())
                || self.lower[i] > 0.0
                || self.upper[i] < 0.0
            {
                return bad(
                    "wrist limits",
                    format!(
                        "coordinate {i}: need finite lower ≤ 0 ≤ upper, got [{}, {}]",
                        self.lower[i], self.upper[i]
                    ),
                );
            }
            if !(self.max_speed[i].is_finite() && self.max_speed[i] > 0.0) {
                return bad(
                    "wrist max_speed",
                    format!(
                        "coordinate {i}: must be positive, got {}",
                        self.max_speed[i]
                    ),
                );
            }
        }
        for (what, v) in [
            ("wrist stiffness", self.stiffness),
            ("wrist damping", self.damping),
            ("wrist max_effort", self.max_effort),
        ] {
            if v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return bad(what, format!("must be positive, got {v:?}"));
            }
        }
        Ok(())
    }

    /// `w` clamped to the limits.
    pub fn clamp(&self, w: &[f64; 6]) -> [f64; 6] {
        std::array::from_fn(|i| w[i].clamp(self.lower[i], self.upper[i]))
    }

    /// One step of the rate limiter: `from` moved toward `to` by at most
    /// `max_speed · dt` per coordinate.
    pub fn advance(&self, from: &[f64; 6], to: &[f64; 6], dt: f64) -> [f64; 6] {
        std::array::from_fn(|i| {
            let step = self.max_speed[i] * dt;
            from[i] + (to[i] - from[i]).clamp(-step, step)
        })
    }
}

/// Records `target`, clamped to the limits, as the wrist's requested target (what
/// [`crate::Simulator::set_wrist_target`] does on every backend).
///
/// # Errors
///
/// A length or non-finite error for a bad target, [`Error::Unsupported`] naming
/// `backend` when the hand has no wrist (`config` or `requested` is `None`).
#[cfg_attr(not(any(feature = "rapier", feature = "mujoco")), allow(dead_code))]
pub(crate) fn request_target(
    backend: &'static str,
    config: Option<WristConfig>,
    requested: Option<&mut [f64; 6]>,
    target: &[f64; 6],
) -> Result<()> {
    crate::error::check_vector("wrist target", target, 6)?;
    let (Some(config), Some(requested)) = (config, requested) else {
        return Err(Error::Unsupported {
            backend,
            what: "a wrist: this hand is fixed (SimConfig::wrist is None)".into(),
        });
    };
    *requested = config.clamp(target);
    Ok(())
}

/// The wrist's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WristState {
    /// Coordinates `(x, y, z, yaw, pitch, roll)` (m, rad).
    pub position: [f64; 6],
    /// Their rates (m/s, rad/s).
    pub velocity: [f64; 6],
    /// The target the drives follow now (the rate-limited one).
    pub target: [f64; 6],
    /// The target last requested (clamped to the limits).
    pub requested: [f64; 6],
}

/// The palm's pose for wrist coordinates `w` on a wrist whose base frame is `base`:
/// `base · T(x, y, z) · Rz(yaw) · Ry(pitch) · Rx(roll)`.
pub fn wrist_pose(base: &Isometry3<f64>, w: &[f64; 6]) -> Isometry3<f64> {
    let r = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), w[3])
        * UnitQuaternion::from_axis_angle(&Vector3::y_axis(), w[4])
        * UnitQuaternion::from_axis_angle(&Vector3::x_axis(), w[5]);
    base * Isometry3::from_parts(Translation3::new(w[0], w[1], w[2]), r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_rate_limiter_and_the_limits() {
        let c = WristConfig::default();
        let to = c.clamp(&[1.0, 0.0, 0.0, 0.0, 0.0, 5.0]);
        assert_eq!(to[0], 0.3);
        assert_eq!(to[5], 3.0);
        let next = c.advance(&[0.0; 6], &to, 0.1);
        assert!((next[0] - 0.05).abs() < 1e-12);
        assert!((next[5] - 0.2).abs() < 1e-12);
        assert!(c.validate().is_ok());
        let bad = WristConfig {
            lower: [0.1, -0.3, -0.1, -3.0, -3.0, -3.0],
            ..c
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_pose_composes_translation_then_yaw_pitch_roll() {
        let base = Isometry3::translation(0.0, 0.0, 1.0);
        let p = wrist_pose(
            &base,
            &[0.1, 0.0, 0.0, std::f64::consts::FRAC_PI_2, 0.0, 0.0],
        );
        assert!((p.translation.vector - Vector3::new(0.1, 0.0, 1.0)).norm() < 1e-12);
        assert!((p.rotation * Vector3::x() - Vector3::y()).norm() < 1e-12);
    }
}
