//! [`DexGenController`]: DexGen wrapped around a command source, as a [`Policy`].

use std::collections::VecDeque;

use dex_core::{HandModel, JointLimits};
use dex_policy::{ActMode, Policy, check_observations};
use ndarray::{Array2, ArrayView2};
use rand::RngCore;

use crate::dataset::{MODES, StepLayout};
use crate::error::{Error, Result, check_finite, check_len};
use crate::model::DexGen;

/// What a joint-target command's keypoint offset is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandReference {
    /// `Δx_cmd = FK_K(q̃_cmd) − FK_K(q̃)`: the keypoint motion the command's change of
    /// the targets in force asks for (dex's default). A finger pressing on an object
    /// holds its target past its position; measured from the targets, that standing
    /// offset is not read as a motion to make.
    #[default]
    Targets,
    /// `Δx_cmd = FK_K(q̃_cmd) − FK_K(q)`, from the measured joints (the facts' proposal):
    /// the standing offset of a grasp is part of every command.
    Measured,
}

/// How a joint-target command's one-step keypoint offset spreads over the motion's `T`
/// future steps (the paper's Dist has one `K × 3` command for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandSteps {
    /// Every future step is pulled to the same offset Δx_cmd (DexGen's Dist as written):
    /// "be there and stay".
    Hold,
    /// Step `i` is pulled to `i·Δx_cmd`: the commanded change repeated, as a source that
    /// keeps commanding it would make it (dex's default: motions in the data are of this
    /// kind, the second step's offset about twice the first's, and on the guidance
    /// sweeps it carries the command better — at α = 30 the slow expert reaches 0.56
    /// goals per episode against 0.25 with `Hold`, the expert 1.31 against 1.19).
    #[default]
    Repeat,
}

/// DexGen around a command source, acting on the observations of a task with relative
/// joint-target actions and history 1 (the layout [`crate::TaskSettings`] builds):
/// `[q, q̃, q̇·0.1, …]`, positions and targets normalised to `[-1, 1]`.
///
/// Per control step and environment it (1) reads `q` and the targets in force `q̃` from
/// the observation, computes the keypoints by forward kinematics and keeps a history of
/// DexGen's state; (2) asks the source for its action, turns it into the targets it
/// commands and those into a keypoint command `Δx_cmd = FK_K(q̃_cmd) − FK_K(q̃)` (dex's
/// choice, see [`CommandReference`]: the paper does not say how a joint-space command
/// becomes a keypoint offset);
/// (3) samples a motion with guidance of strength α towards the command; (4) turns it
/// into target changes with the inverse dynamics model; (5) returns them as relative
/// actions (clamped to `[-1, 1]`). A raw keypoint stream (teleoperation) goes through
/// [`DexGenController::act_with_command`] instead. Deterministic for the generator's
/// state.
pub struct DexGenController<P> {
    model: DexGen,
    source: P,
    hand: HandModel,
    limits: Vec<JointLimits>,
    layout: StepLayout,
    relative_scale: f64,
    /// Relative targets of `relative_scale`: the mapping the task applies to actions.
    mapping: dex_sim::TaskConfig,
    guidance: f64,
    reference: CommandReference,
    steps: CommandSteps,
    history: Vec<VecDeque<Vec<f32>>>,
    observation_dim: usize,
}

impl<P> std::fmt::Debug for DexGenController<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DexGenController")
            .field("model", &self.model)
            .field("guidance", &self.guidance)
            .finish_non_exhaustive()
    }
}

/// The parsed hand state of one observation row.
struct RowState {
    q: Vec<f64>,
    targets: Vec<f64>,
    keypoints: Vec<[f64; 3]>,
    target_keypoints: Vec<[f64; 3]>,
}

impl<P: Policy> DexGenController<P> {
    /// `model` for `hand`, around `source` (a policy on the same observations), with
    /// guidance strength `guidance`, for actions of `relative_scale` rad per unit.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] when the model was trained on another hand layout, the
    /// source's widths do not match the hand, or the strength or scale is invalid.
    pub fn new(
        model: DexGen,
        source: P,
        hand: HandModel,
        relative_scale: f64,
        guidance: f64,
    ) -> Result<Self> {
        let layout = StepLayout::for_model(&hand);
        if &layout != model.layout() {
            return Err(Error::InvalidSetting {
                what: "controller",
                reason: format!(
                    "the model was trained on {:?}, the hand is {:?}",
                    model.layout(),
                    layout
                ),
            });
        }
        if !(relative_scale.is_finite() && relative_scale > 0.0) {
            return Err(Error::InvalidSetting {
                what: "relative_scale",
                reason: format!("must be positive, got {relative_scale}"),
            });
        }
        check_len("source action width", layout.dof, source.action_dim())?;
        if source.observation_dim() < 3 * layout.dof {
            return Err(Error::InvalidSetting {
                what: "controller",
                reason: format!(
                    "observations of width {} cannot hold the proprioception of {} joints",
                    source.observation_dim(),
                    layout.dof
                ),
            });
        }
        let mut controller = Self {
            observation_dim: source.observation_dim(),
            model,
            source,
            limits: hand.joint_limits(),
            hand,
            layout,
            relative_scale,
            mapping: dex_sim::TaskConfig {
                action_mode: dex_sim::ActionMode::Relative,
                relative_scale,
                ..dex_sim::TaskConfig::default()
            },
            guidance: 0.0,
            reference: CommandReference::default(),
            steps: CommandSteps::default(),
            history: Vec::new(),
        };
        controller.set_guidance(guidance)?;
        Ok(controller)
    }

    /// Sets the guidance strength α.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a negative or non-finite α.
    pub fn set_guidance(&mut self, guidance: f64) -> Result<()> {
        if !(guidance.is_finite() && guidance >= 0.0) {
            return Err(Error::InvalidSetting {
                what: "guidance strength",
                reason: format!("must be finite and ≥ 0, got {guidance}"),
            });
        }
        self.guidance = guidance;
        Ok(())
    }

    /// Measures commands from `reference` (default [`CommandReference::Targets`]).
    pub fn with_reference(mut self, reference: CommandReference) -> Self {
        self.reference = reference;
        self
    }

    /// Spreads a source's commands over the future steps as `steps` says (default
    /// [`CommandSteps::Repeat`]). Keypoint streams given to
    /// [`DexGenController::act_with_command`] are used as given.
    pub fn with_command_steps(mut self, steps: CommandSteps) -> Self {
        self.steps = steps;
        self
    }

    /// Runs the model's DDIM steps with weights in `precision` (see
    /// [`crate::Precision`]; `f32` by default).
    ///
    /// # Errors
    ///
    /// Tensor errors (the conversion).
    pub fn with_precision(mut self, precision: crate::Precision) -> Result<Self> {
        self.model.set_precision(precision)?;
        Ok(self)
    }

    /// The guidance strength.
    pub fn guidance(&self) -> f64 {
        self.guidance
    }

    /// The command source.
    pub fn source(&self) -> &P {
        &self.source
    }

    fn row_state(&self, row: &[f32]) -> Result<RowState> {
        let dof = self.layout.dof;
        let q: Vec<f64> = (0..dof)
            .map(|j| self.limits[j].from_unit(f64::from(row[j])))
            .collect();
        let targets: Vec<f64> = (0..dof)
            .map(|j| self.limits[j].from_unit(f64::from(row[dof + j])))
            .collect();
        let keypoints = self.keypoints(&q)?;
        let target_keypoints = match self.reference {
            CommandReference::Targets => self.keypoints(&targets)?,
            CommandReference::Measured => keypoints.clone(),
        };
        Ok(RowState {
            q,
            targets,
            keypoints,
            target_keypoints,
        })
    }

    fn keypoints(&self, q: &[f64]) -> Result<Vec<[f64; 3]>> {
        let kp = self
            .hand
            .keypoint_positions(q)
            .map_err(|e| Error::Sim(dex_sim::Error::from(e)))?;
        Ok(kp.positions.iter().map(|p| [p.x, p.y, p.z]).collect())
    }

    /// Records the states and builds the conditions (`B × condition_dim`).
    fn conditions(&mut self, states: &[RowState]) -> Result<Array2<f32>> {
        let spec = self.model.file().config.spec.clone();
        if self.history.len() < states.len() {
            self.history.resize(states.len(), VecDeque::new());
        }
        let width = spec.condition_dim(&self.layout);
        let mut out = Vec::with_capacity(states.len() * width);
        for (i, s) in states.iter().enumerate() {
            let row = self.layout.row(&s.keypoints, &s.q, &s.targets)?;
            let h = &mut self.history[i];
            if h.is_empty() {
                h.extend(std::iter::repeat_n(row.clone(), spec.history));
            } else {
                h.push_front(row.clone());
                h.truncate(spec.history);
            }
            for r in h.iter() {
                spec.push_state(&self.layout, r, &mut out);
            }
            out.extend_from_slice(&row[self.layout.mode()..self.layout.mode() + MODES]);
        }
        Array2::from_shape_vec((states.len(), width), out).map_err(|e| Error::InvalidSetting {
            what: "condition",
            reason: e.to_string(),
        })
    }

    /// Actions for `observations` with a keypoint command given directly, bypassing the
    /// source: `B × K'·3` (metres, in the hand's root frame: the offset every future
    /// step is pulled to, e.g. a teleoperator's retargeted fingertips minus the
    /// keypoints the motion follows — those of the targets in force for a model of
    /// [`crate::dataset::MotionOf::Targets`], of the joints for `Measured`), or
    /// `B × T·K'·3`, one offset per future step.
    ///
    /// # Errors
    ///
    /// Shapes; NaN in the observations or the command.
    pub fn act_with_command(
        &mut self,
        observations: ArrayView2<'_, f32>,
        command: ArrayView2<'_, f32>,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        check_len("command rows", observations.nrows(), command.nrows())?;
        check_finite("command", command.iter())?;
        let states = observations
            .rows()
            .into_iter()
            .map(|r| self.row_state(&r.to_vec()))
            .collect::<Result<Vec<_>>>()?;
        self.control(&states, command, rng)
    }

    fn control(
        &mut self,
        states: &[RowState],
        command: ArrayView2<'_, f32>,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let condition = self.conditions(states)?;
        let (_, change) =
            self.model
                .control(condition.view(), Some((command, self.guidance)), rng)?;
        let dof = self.layout.dof;
        let mut actions = Array2::zeros((states.len(), dof));
        for (i, s) in states.iter().enumerate() {
            for j in 0..dof {
                let target = clamp_to(&self.limits[j], s.targets[j] + f64::from(change[[i, j]]));
                let a = (target - s.targets[j]) / self.relative_scale;
                actions[[i, j]] = a.clamp(-1.0, 1.0) as f32;
            }
        }
        Ok(actions)
    }

    /// The keypoint command of the source's actions: `B × K'·3` ([`CommandSteps::Hold`])
    /// or `B × T·K'·3` ([`CommandSteps::Repeat`]).
    fn command(&self, states: &[RowState], actions: &Array2<f32>) -> Result<Array2<f32>> {
        let kp = self.model.motion_keypoints();
        let width = 3 * kp.len();
        let blocks = match self.steps {
            CommandSteps::Hold => 1,
            CommandSteps::Repeat => self.model.file().config.spec.horizon,
        };
        let mut out = Array2::zeros((states.len(), blocks * width));
        for (i, s) in states.iter().enumerate() {
            let action: Vec<f32> = actions.row(i).iter().map(|a| a.clamp(-1.0, 1.0)).collect();
            // The targets the source commands, through the task's own action mapping.
            let commanded = self
                .mapping
                .action_targets(&self.limits, &action, &s.targets, None)?;
            let goal = self.keypoints(&commanded)?;
            for (n, &k) in kp.iter().enumerate() {
                for c in 0..3 {
                    let offset = (goal[k][c] - s.target_keypoints[k][c]) as f32;
                    for b in 0..blocks {
                        out[[i, b * width + 3 * n + c]] = (b + 1) as f32 * offset;
                    }
                }
            }
        }
        Ok(out)
    }
}

impl<P: Policy> Policy for DexGenController<P> {
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    fn action_dim(&self) -> usize {
        self.layout.dof
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> dex_policy::Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        let wrap = |e: Error| dex_policy::Error::InvalidInput(format!("DexGen controller: {e}"));
        let source = self.source.act(observations, mode, rng)?;
        if let Some(index) = source.iter().position(|v| !v.is_finite()) {
            return Err(wrap(Error::NotFinite {
                what: "command source's action",
                index,
            }));
        }
        let states = observations
            .rows()
            .into_iter()
            .map(|r| self.row_state(&r.to_vec()))
            .collect::<Result<Vec<_>>>()
            .map_err(wrap)?;
        let command = self.command(&states, &source).map_err(wrap)?;
        self.control(&states, command.view(), rng).map_err(wrap)
    }

    fn reset(&mut self, env: usize) {
        if let Some(h) = self.history.get_mut(env) {
            h.clear();
        }
        self.source.reset(env);
    }
}

/// `value` within the limits (max/min rather than `clamp`: never panics).
fn clamp_to(limits: &JointLimits, value: f64) -> f64 {
    value.max(limits.lower).min(limits.upper)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::DexGenConfig;
    use dex_policy::MockPolicy;

    fn controller(steps: CommandSteps) -> DexGenController<MockPolicy> {
        let hand = HandModel::leap_right();
        let mut config = DexGenConfig::default();
        config.denoiser.hidden = 16;
        config.denoiser.state_hidden = 16;
        config.denoiser.time_dim = 8;
        config.idm.hidden = 16;
        let model = DexGen::untrained(config, &StepLayout::for_model(&hand), 0).unwrap();
        let source = MockPolicy::new(64, vec![0.25; 16]);
        DexGenController::new(model, source, hand, 0.4, 1.0)
            .unwrap()
            .with_command_steps(steps)
    }

    #[test]
    fn repeat_spreads_the_commanded_change_over_the_future_steps() {
        let hold = controller(CommandSteps::Hold);
        let repeat = controller(CommandSteps::Repeat);
        let mut row = vec![0.0f32; 64];
        for j in 0..16 {
            row[j] = 0.05 * j as f32 / 16.0;
            row[16 + j] = row[j] + 0.02;
        }
        let state = hold.row_state(&row).unwrap();
        let actions = Array2::from_elem((1, 16), 0.25f32);
        let one = hold
            .command(std::slice::from_ref(&state), &actions)
            .unwrap();
        let two = repeat
            .command(std::slice::from_ref(&state), &actions)
            .unwrap();
        assert_eq!(one.ncols(), 24);
        assert_eq!(two.ncols(), 48);
        assert!(one.iter().any(|v| v.abs() > 1e-4), "the command moves");
        for j in 0..24 {
            assert_eq!(two[[0, j]], one[[0, j]]);
            assert!((two[[0, 24 + j]] - 2.0 * one[[0, j]]).abs() < 1e-7);
        }
    }
}
