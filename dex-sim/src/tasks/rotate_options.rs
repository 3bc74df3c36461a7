//! The `rotate` task's options (`[task.rotate]`) and the palm orientations it knows.

use dex_core::HandModel;
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which way the palm faces, expressed by turning gravity (the palm itself stays fixed,
/// facing world +z): `Up` — gravity −z; `Down` — gravity +z; `Side` — gravity −y.
/// In TOML: `"up"`, `"down"`, `"side"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PalmOrientation {
    /// Palm up.
    #[default]
    Up,
    /// Palm down.
    Down,
    /// Palm on its side.
    Side,
}

impl PalmOrientation {
    /// The gravity vector (m/s², world).
    pub fn gravity(self) -> Vector3<f64> {
        match self {
            PalmOrientation::Up => Vector3::new(0.0, 0.0, -9.81),
            PalmOrientation::Down => Vector3::new(0.0, 0.0, 9.81),
            PalmOrientation::Side => Vector3::new(0.0, -9.81, 0.0),
        }
    }
}

/// The `[task.rotate]` table: palm orientation, start pose, reward weights and
/// thresholds of [`crate::InHandRotation`]. Every key optional; unknown keys are an error.
///
/// The reward terms follow DexNDM's (arXiv 2510.08556, App. A.1, after RotateIt): a
/// clipped rotation speed about the axis, penalties on off-axis rotation, object linear
/// velocity, hand pose, work and torque; plus an object drift term and a drop penalty of
/// dex's own. The defaults keep the earlier task's weights; the base policy of
/// `dex-ndm`'s rotation figures was trained with the weights its run config names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotateOptions {
    /// Palm orientation.
    pub palm: PalmOrientation,
    /// The joint configuration (rad, model order) each episode starts from; empty (the
    /// default) for the open hand ([`crate::open_configuration`]). A value outside the
    /// joint limits is an error when the task is built (never clamped).
    pub start_configuration: Vec<f64>,
    /// Angular velocity about the axis is clipped to ±this (rad/s) in the reward.
    pub angvel_clip: f64,
    /// Weight of the off-axis angular speed penalty (per rad/s).
    pub off_axis_weight: f64,
    /// Weight of the object drift penalty (per m from its start position).
    pub drift_weight: f64,
    /// Weight of the joint work penalty (per W).
    pub work_weight: f64,
    /// Weight of the torque penalty (per N²·m²).
    pub torque_weight: f64,
    /// Weight of the object's linear velocity penalty (per m²/s²).
    pub linvel_weight: f64,
    /// Weight of the hand pose penalty: squared distance (rad²) of the joints from the
    /// start configuration.
    pub pose_weight: f64,
    /// Subtracted once, on the step the object drops.
    pub drop_penalty: f64,
    /// Rotation (rad) that counts as success.
    pub success_rotation: f64,
    /// The object counts as dropped this far (m) from its start position.
    pub drop_distance: f64,
}

impl Default for RotateOptions {
    fn default() -> Self {
        Self {
            palm: PalmOrientation::Up,
            start_configuration: Vec::new(),
            angvel_clip: 0.5,
            off_axis_weight: 0.3,
            drift_weight: 5.0,
            work_weight: 0.02,
            torque_weight: 0.01,
            linvel_weight: 0.0,
            pose_weight: 0.0,
            drop_penalty: 0.0,
            success_rotation: std::f64::consts::FRAC_PI_2,
            drop_distance: 0.08,
        }
    }
}

impl RotateOptions {
    /// Checks the fields against `model` (the start configuration's length and limits).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a negative or non-finite weight, a clip, success rotation or
    /// drop distance that is not positive, or a start configuration of the wrong length
    /// or outside the joint limits.
    pub fn validate(&self, model: &HandModel) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message });
        for (name, v) in [
            ("off_axis_weight", self.off_axis_weight),
            ("drift_weight", self.drift_weight),
            ("work_weight", self.work_weight),
            ("torque_weight", self.torque_weight),
            ("linvel_weight", self.linvel_weight),
            ("pose_weight", self.pose_weight),
            ("drop_penalty", self.drop_penalty),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("rotate.{name} = {v}: needs a finite value >= 0"));
            }
        }
        for (name, v) in [
            ("angvel_clip", self.angvel_clip),
            ("success_rotation", self.success_rotation),
            ("drop_distance", self.drop_distance),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("rotate.{name} = {v}: needs a finite value > 0"));
            }
        }
        let q = &self.start_configuration;
        if q.is_empty() {
            return Ok(());
        }
        if q.len() != model.dof() {
            return bad(format!(
                "rotate.start_configuration has {} values; {} has {} joints",
                q.len(),
                model.name(),
                model.dof()
            ));
        }
        for ((v, l), j) in q.iter().zip(model.joint_limits()).zip(model.dof_joints()) {
            if !(v.is_finite() && *v >= l.lower && *v <= l.upper) {
                return bad(format!(
                    "rotate.start_configuration: {} = {v} is outside [{}, {}]",
                    j.name, l.lower, l.upper
                ));
            }
        }
        Ok(())
    }
}
