//! The residual policy (DexNDM §3.3): a correction added to a base policy's targets so
//! that, through the learned dynamics of the real hand, the joints move as they did in
//! the simulation the base policy was trained in.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Module, Optimizer, ParamsAdamW, VarMap};
use dex_policy::chunk_files::{read_toml, write_toml_atomic};
use dex_policy::nets::{Activation, Mlp, MlpConfig, frozen_builder, init_seeded, new_store};
use dex_policy::{ActMode, Policy, RunningMeanStd, check_observations};
use dex_sim::Env;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::collect::clipped_action;
use crate::error::{Error, Result, check_finite, data_error};
use crate::model::DynamicsModel;

/// A base policy's rollouts in simulation: per control step `t` its observation `o_t`,
/// the joint positions `q_t` measured before acting and the joint targets `a_t` (rad)
/// its action set. Consecutive steps of an episode form a segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollouts {
    /// Observation width.
    pub obs_dim: usize,
    /// Joints.
    pub dof: usize,
    /// `steps × obs_dim`.
    pub obs: Vec<f32>,
    /// `steps × dof`.
    pub q: Vec<f32>,
    /// `steps × dof`.
    pub targets: Vec<f32>,
    /// `(first step, length)` of each episode.
    pub segments: Vec<(usize, usize)>,
}

impl Rollouts {
    /// Control steps.
    pub fn len(&self) -> usize {
        self.q.len() / self.dof.max(1)
    }

    /// Whether there is no step.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Appends an episode: `obs` (`len × obs_dim`), `q` and `targets` (`len × dof`).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for other widths or lengths; [`Error::NotFinite`].
    pub fn push_episode(&mut self, obs: &[f32], q: &[f32], targets: &[f32]) -> Result<()> {
        let len = q.len() / self.dof.max(1);
        for (what, v, width) in [
            ("episode observations", obs, self.obs_dim),
            ("episode joint positions", q, self.dof),
            ("episode joint targets", targets, self.dof),
        ] {
            if v.len() != len * width {
                return Err(Error::LengthMismatch {
                    what,
                    expected: len * width,
                    got: v.len(),
                });
            }
            check_finite(what, v.iter())?;
        }
        self.segments.push((self.len(), len));
        self.obs.extend_from_slice(obs);
        self.q.extend_from_slice(q);
        self.targets.extend_from_slice(targets);
        Ok(())
    }

    /// Every step `t` with a `window`-step history inside its episode and a next step.
    fn sample_index(&self, window: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for &(first, len) in &self.segments {
            for t in window.saturating_sub(1)..len.saturating_sub(1) {
                out.push(first + t);
            }
        }
        out
    }
}

/// Rolls `policy` out on `env` (which must have a simulator) for `episodes` episodes of
/// at most `steps` steps, the first reset with `seed`, acting deterministically.
///
/// # Errors
///
/// [`Error::InvalidSetting`] without a simulator or for mismatched widths; the
/// policy's and the simulation's errors.
pub fn record_rollouts(
    env: &mut dyn Env,
    policy: &mut dyn Policy,
    episodes: usize,
    steps: usize,
    seed: u64,
) -> Result<Rollouts> {
    let sim_error = |e: dex_sim::Error| Error::Policy(dex_policy::Error::Sim(e));
    let name = env.name().to_string();
    let no_sim = || Error::InvalidSetting {
        what: "rollout environment",
        reason: format!("`{name}` has no simulator to read joints from"),
    };
    let dof = env.simulator().ok_or_else(no_sim)?.model().dof();
    let obs_dim = env.observation_spec().state.dim();
    if policy.observation_dim() != obs_dim {
        return Err(Error::InvalidSetting {
            what: "base policy",
            reason: format!(
                "takes {} observations, `{name}` gives {obs_dim}",
                policy.observation_dim(),
            ),
        });
    }
    let mut out = Rollouts {
        obs_dim,
        dof,
        ..Rollouts::default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for e in 0..episodes {
        let (mut o, _) = env.reset(Some(seed + e as u64)).map_err(sim_error)?;
        policy.reset(0);
        let (mut obs, mut q, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..steps {
            let sim = env.simulator().ok_or_else(no_sim)?;
            q.extend(sim.joint_state().q.iter().map(|&v| v as f32));
            let action = clipped_action(&*env, policy, &o.state, &mut rng)?;
            let step = env.step(&action).map_err(sim_error)?;
            let sim = env.simulator().ok_or_else(no_sim)?;
            targets.extend(sim.joint_targets().iter().map(|&v| v as f32));
            obs.extend_from_slice(&o.state);
            o = step.obs;
            if step.terminated || step.truncated {
                break;
            }
        }
        out.push_episode(&obs, &q, &targets)?;
    }
    Ok(out)
}

/// How the residual is trained. DexNDM gives no architecture or settings for it
/// (fact sheet §7: NOT FOUND); dex's choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidualConfig {
    /// Hidden widths of the residual MLP (ELU).
    pub hidden: Vec<usize>,
    /// Largest correction per joint (rad): the output is `max_correction · tanh(·)`.
    pub max_correction: f64,
    /// Weight of the mean squared correction (rad²) in the loss: keeps it small where
    /// the dynamics do not ask for one.
    pub correction_weight: f64,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// Passes over the rollouts.
    pub epochs: f64,
    /// Seed of the weights and the batches.
    pub seed: u64,
    /// The observation columns the residual sees, as half-open ranges `[start, end)`;
    /// empty (the default) for all. The others reach its network as zeros (e.g.
    /// `[[0, 112]]`: the LEAP proprioception of a 3-step history, without the object).
    pub observe: Vec<[usize; 2]>,
}

impl Default for ResidualConfig {
    fn default() -> Self {
        Self {
            hidden: vec![256, 256],
            max_correction: 0.2,
            correction_weight: 0.01,
            learning_rate: 3e-4,
            batch_size: 256,
            epochs: 20.0,
            seed: 0,
            observe: Vec::new(),
        }
    }
}

/// How a base policy's actions become joint targets, as far as its residual needs to
/// know to turn a target correction (rad) into an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionUnits {
    /// Action units per radian of target, per joint.
    pub per_rad: Vec<f32>,
    /// The actions move the targets (`target += action / per_rad`, dex-sim's
    /// [`dex_sim::ActionMode::Relative`]) instead of setting them: the residual then
    /// acts with the change of its correction since its last step, so that the target
    /// the hand receives is the base policy's plus the present correction (not the sum
    /// of every correction so far). Per environment, forgotten on `reset`.
    pub relative: bool,
}

impl ActionUnits {
    /// The units of a policy trained on a dex-sim task with `config` for `model`:
    /// absolute actions span each joint's range (a radian is `2 / range` units),
    /// relative ones move a target `relative_scale` rad per unit.
    pub fn for_task(model: &dex_core::HandModel, config: &dex_sim::TaskConfig) -> Self {
        match config.action_mode {
            dex_sim::ActionMode::Absolute => Self {
                per_rad: model
                    .joint_limits()
                    .iter()
                    .map(|l| (2.0 / (l.upper - l.lower)) as f32)
                    .collect(),
                relative: false,
            },
            dex_sim::ActionMode::Relative => Self {
                per_rad: vec![(1.0 / config.relative_scale) as f32; model.dof()],
                relative: true,
            },
        }
    }
}

/// What the residual's file holds besides its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResidualFile {
    format: String,
    version: u32,
    obs_dim: usize,
    dof: usize,
    config: ResidualConfig,
    /// Action units per radian of target, per joint.
    action_per_rad: Vec<f32>,
    /// The base policy's actions move its targets ([`ActionUnits::relative`]).
    #[serde(default)]
    relative: bool,
    obs_stats: RunningMeanStd,
    report: Option<ResidualReport>,
}

const FILE: &str = "residual.toml";
const WEIGHTS: &str = "residual.safetensors";
const FORMAT: &str = "dex-ndm-residual";

/// What [`train_residual`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidualReport {
    /// Gradient steps.
    pub steps: usize,
    /// Seconds.
    pub seconds: f64,
    /// RMS one-step error (rad) of the learned dynamics fed the base targets alone,
    /// against the simulated next positions, over every sample.
    pub rmse_without_rad: f64,
    /// The same with the residual's corrections.
    pub rmse_with_rad: f64,
    /// RMS correction (rad).
    pub correction_rms_rad: f64,
}

/// Which corrections [`ResidualPolicy::loss`] adds to the base targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Correction {
    /// The training network's (gradients flow into it).
    Training,
    /// The frozen network's.
    Frozen,
    /// None: the base targets as they are.
    None,
}

/// The residual policy: observations in, a correction of the base policy's action out
/// (in action units: the correction in radians times [`ActionUnits::per_rad`], or its
/// change since the last step for relative actions), for dex-policy's `Residual`
/// wrapper with scale 1.
pub struct ResidualPolicy {
    varmap: VarMap,
    train_net: Mlp,
    net: Mlp,
    file: ResidualFile,
    /// With relative actions: each environment's last correction (rad).
    previous: Vec<Vec<f32>>,
}

impl std::fmt::Debug for ResidualPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidualPolicy")
            .field("obs_dim", &self.file.obs_dim)
            .field("dof", &self.file.dof)
            .finish()
    }
}

impl ResidualPolicy {
    fn new(
        obs_dim: usize,
        dof: usize,
        units: ActionUnits,
        obs_stats: RunningMeanStd,
        config: ResidualConfig,
    ) -> Result<Self> {
        if units.per_rad.len() != dof || obs_stats.dim() != obs_dim {
            return Err(Error::LengthMismatch {
                what: "action scales and observation statistics",
                expected: dof,
                got: units.per_rad.len(),
            });
        }
        if let Some(r) = config
            .observe
            .iter()
            .find(|r| r[0] >= r[1] || r[1] > obs_dim)
        {
            return Err(Error::InvalidSetting {
                what: "residual observe",
                reason: format!(
                    "{}..{} is not a non-empty range of the {obs_dim} observations",
                    r[0], r[1]
                ),
            });
        }
        if !(config.max_correction.is_finite() && config.max_correction > 0.0)
            || config.batch_size == 0
            || !config.learning_rate.is_finite()
            || config.learning_rate <= 0.0
        {
            return Err(Error::InvalidSetting {
                what: "residual config",
                reason: format!("{config:?}"),
            });
        }
        let mlp = MlpConfig {
            input: obs_dim,
            hidden: config.hidden.clone(),
            output: dof,
            activation: Activation::Elu,
            layer_norm: false,
        };
        let (varmap, vb) = new_store();
        let train_net = Mlp::new(&mlp, &vb)?;
        // Small last layer: the residual starts near zero.
        init_seeded(&varmap, config.seed, |name| {
            if name.starts_with("out") { 0.01 } else { 1.0 }
        })?;
        let net = Mlp::new(&mlp, &frozen_builder(&varmap)?)?;
        Ok(Self {
            varmap,
            train_net,
            net,
            file: ResidualFile {
                format: FORMAT.into(),
                version: 1,
                obs_dim,
                dof,
                config,
                action_per_rad: units.per_rad,
                relative: units.relative,
                obs_stats,
                report: None,
            },
            previous: Vec::new(),
        })
    }

    /// What training reported.
    pub fn report(&self) -> Option<&ResidualReport> {
        self.file.report.as_ref()
    }

    fn normalised(&self, obs: &Tensor) -> Result<Tensor> {
        let s = &self.file.obs_stats;
        let mean: Vec<f32> = s.mean.iter().map(|&m| m as f32).collect();
        let observe = &self.file.config.observe;
        let seen =
            |k: usize| observe.is_empty() || observe.iter().any(|r| (r[0]..r[1]).contains(&k));
        let inv: Vec<f32> = s
            .var
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if seen(k) {
                    (1.0 / (v + 1e-8).sqrt()) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let d = self.file.obs_dim;
        Ok(obs
            .broadcast_sub(&Tensor::from_vec(mean, (1, d), &Device::Cpu)?)?
            .broadcast_mul(&Tensor::from_vec(inv, (1, d), &Device::Cpu)?)?
            .clamp(-10f32, 10f32)?)
    }

    /// Corrections in radians (`rows × dof`) of `obs` (`rows × obs_dim`), through the
    /// training network (`train`) or the frozen one.
    fn corrections(&self, obs: &Tensor, train: bool) -> Result<Tensor> {
        let net = if train { &self.train_net } else { &self.net };
        let y = net.forward(&self.normalised(obs)?)?;
        Ok((y.tanh()? * self.file.config.max_correction)?)
    }

    /// The training loss of a batch of history windows: the learned dynamics fed the
    /// simulated positions and the corrected targets (the base targets alone with
    /// [`Correction::None`]), against the simulated next positions, plus the correction
    /// penalty. Returns `(loss, rmse without the penalty, rms correction)`.
    fn loss(
        &self,
        model: &dyn DynamicsModel,
        data: &Rollouts,
        index: &[usize],
        correction: Correction,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (w, d, o) = (model.window(), data.dof, data.obs_dim);
        let b = index.len();
        let (mut obs, mut q, mut a, mut next) = (
            Vec::with_capacity(b * w * o),
            Vec::with_capacity(b * w * d),
            Vec::with_capacity(b * w * d),
            Vec::with_capacity(b * d),
        );
        for &t in index {
            for j in t + 1 - w..=t {
                obs.extend_from_slice(&data.obs[j * o..(j + 1) * o]);
                q.extend_from_slice(&data.q[j * d..(j + 1) * d]);
                a.extend_from_slice(&data.targets[j * d..(j + 1) * d]);
            }
            next.extend_from_slice(&data.q[(t + 1) * d..(t + 2) * d]);
        }
        let obs = Tensor::from_vec(obs, (b * w, o), &Device::Cpu)?;
        let q = Tensor::from_vec(q, (b, w, d), &Device::Cpu)?;
        let a = Tensor::from_vec(a, (b, w, d), &Device::Cpu)?;
        let next = Tensor::from_vec(next, (b, d), &Device::Cpu)?;
        let corr = match correction {
            Correction::Training => self.corrections(&obs, true)?.reshape((b, w, d))?,
            Correction::Frozen => self.corrections(&obs, false)?.reshape((b, w, d))?,
            Correction::None => a.zeros_like()?,
        };
        let pred = model.forward(&q, &a.add(&corr)?)?;
        let mse = pred.sub(&next)?.sqr()?.mean_all()?;
        let corr_ms = corr.sqr()?.mean_all()?;
        let loss = mse.add(&(corr_ms.clone() * self.file.config.correction_weight)?)?;
        Ok((loss, mse.sqrt()?, corr_ms.sqrt()?))
    }

    /// Writes `residual.toml` and `residual.safetensors` into `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when a file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| data_error(dir, e.to_string()))?;
        write_toml_atomic(&dir.join(FILE), &self.file)?;
        let path = dir.join(WEIGHTS);
        self.varmap
            .save(&path)
            .map_err(|e| data_error(&path, e.to_string()))
    }

    /// Reads a residual written by [`ResidualPolicy::save`].
    ///
    /// # Errors
    ///
    /// [`Error::Data`] naming the file for a missing, corrupt or mis-shaped one.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let file: ResidualFile = read_toml(&path)?;
        if file.format != FORMAT || file.version != 1 {
            return Err(data_error(
                &path,
                format!("is {} v{}, not {FORMAT} v1", file.format, file.version),
            ));
        }
        let units = ActionUnits {
            per_rad: file.action_per_rad.clone(),
            relative: file.relative,
        };
        let mut policy = Self::new(
            file.obs_dim,
            file.dof,
            units,
            file.obs_stats.clone(),
            file.config.clone(),
        )
        .map_err(|e| data_error(&path, e.to_string()))?;
        let weights = dir.join(WEIGHTS);
        policy
            .varmap
            .load(&weights)
            .map_err(|e| data_error(&weights, e.to_string()))?;
        policy.file.report = file.report;
        policy.net = Mlp::new(
            &policy.train_net.config().clone(),
            &frozen_builder(&policy.varmap)?,
        )?;
        Ok(policy)
    }
}

impl Policy for ResidualPolicy {
    fn observation_dim(&self) -> usize {
        self.file.obs_dim
    }

    fn action_dim(&self) -> usize {
        self.file.dof
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn rand::RngCore,
    ) -> dex_policy::Result<Array2<f32>> {
        check_observations(observations, self.file.obs_dim)?;
        let obs = dex_policy::convert::to_tensor(observations)?;
        let corrections = self
            .corrections(&obs, false)
            .map_err(|e| dex_policy::Error::InvalidInput(e.to_string()))?;
        let mut out = dex_policy::convert::to_array(&corrections)?;
        if self.file.relative {
            let dof = self.file.dof;
            if self.previous.len() < out.nrows() {
                self.previous.resize(out.nrows(), vec![0.0; dof]);
            }
            for (mut row, previous) in out.rows_mut().into_iter().zip(&mut self.previous) {
                for (v, p) in row.iter_mut().zip(previous.iter_mut()) {
                    let now = *v;
                    *v -= *p;
                    *p = now;
                }
            }
        }
        for mut row in out.rows_mut() {
            for (v, s) in row.iter_mut().zip(&self.file.action_per_rad) {
                *v *= s;
            }
        }
        Ok(out)
    }

    fn reset(&mut self, env: usize) {
        if let Some(p) = self.previous.get_mut(env) {
            p.fill(0.0);
        }
    }
}

/// Trains a residual for the base policy whose simulated `rollouts` are given, through
/// the frozen dynamics `model` of the real hand (DexNDM's objective, §7): over every
/// window of `model.window()` steps, the model fed the simulated positions and the base
/// targets plus the residual's corrections should predict the simulated next
/// positions. Gradients flow through the model into the residual only.
/// `units` maps a correction in radians to the base policy's actions
/// ([`ActionUnits::for_task`]).
///
/// # Errors
///
/// [`Error::LengthMismatch`] for rollouts of another joint count than the model's;
/// [`Error::InvalidSetting`] for a bad config or rollouts without a full window; tensor
/// errors.
pub fn train_residual(
    model: &dyn DynamicsModel,
    rollouts: &Rollouts,
    units: ActionUnits,
    config: &ResidualConfig,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<ResidualPolicy> {
    if rollouts.dof != model.dof() {
        return Err(Error::LengthMismatch {
            what: "rollout joints",
            expected: model.dof(),
            got: rollouts.dof,
        });
    }
    let mut index = rollouts.sample_index(model.window());
    if index.is_empty() {
        return Err(Error::InvalidSetting {
            what: "rollouts",
            reason: format!(
                "no episode is longer than the model's {}-step history",
                model.window()
            ),
        });
    }
    let mut stats = RunningMeanStd::new(rollouts.obs_dim);
    let obs =
        ArrayView2::from_shape((rollouts.len(), rollouts.obs_dim), &rollouts.obs).map_err(|e| {
            Error::InvalidSetting {
                what: "rollout observations",
                reason: e.to_string(),
            }
        })?;
    stats.update(obs)?;
    let mut policy =
        ResidualPolicy::new(rollouts.obs_dim, rollouts.dof, units, stats, config.clone())?;
    let start = Instant::now();
    let score = |p: &ResidualPolicy, index: &[usize], with: bool| -> Result<(f64, f64)> {
        let (mut se, mut cs, mut n) = (0.0, 0.0, 0.0);
        for chunk in index.chunks(2048) {
            let correction = if with {
                Correction::Frozen
            } else {
                Correction::None
            };
            let (_, rmse, corr) = p.loss(model, rollouts, chunk, correction)?;
            let k = chunk.len() as f64;
            se += f64::from(rmse.to_scalar::<f32>()?).powi(2) * k;
            cs += f64::from(corr.to_scalar::<f32>()?).powi(2) * k;
            n += k;
        }
        Ok(((se / n).sqrt(), (cs / n).sqrt()))
    };
    let (without, _) = score(&policy, &index, false)?;
    let mut opt = AdamW::new(
        policy.varmap.all_vars(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let per_epoch = index.len().div_ceil(config.batch_size);
    let total = (config.epochs * per_epoch as f64).ceil() as usize;
    let mut cursor = index.len();
    for step in 0..total {
        if cursor + config.batch_size > index.len() {
            index.shuffle(&mut rng);
            cursor = 0;
        }
        let end = (cursor + config.batch_size).min(index.len());
        let (loss, _, _) =
            policy.loss(model, rollouts, &index[cursor..end], Correction::Training)?;
        cursor = end;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::Policy(dex_policy::Error::Diverged(format!(
                "residual loss {value} at step {step}"
            ))));
        }
        opt.backward_step(&loss)?;
        on_step(step, value);
    }
    policy.net = Mlp::new(
        &policy.train_net.config().clone(),
        &frozen_builder(&policy.varmap)?,
    )?;
    let (with, corr) = score(&policy, &index, true)?;
    policy.file.report = Some(ResidualReport {
        steps: total,
        seconds: start.elapsed().as_secs_f64(),
        rmse_without_rad: without,
        rmse_with_rad: with,
        correction_rms_rad: corr,
    });
    Ok(policy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::synthetic::{Plant, joint_data};
    use crate::{FitConfig, JointWise, JointWiseConfig};

    /// Rollouts of 3 joints whose observation is (q_t, a_t) and whose targets are the
    /// synthetic dataset's.
    fn rollouts(plant: Plant) -> Rollouts {
        let data = joint_data(3, 6, 80, plant, 7).unwrap();
        let mut r = Rollouts {
            obs_dim: 6,
            dof: 3,
            ..Rollouts::default()
        };
        for seg in &data.segments {
            let (mut obs, mut q, mut a) = (Vec::new(), Vec::new(), Vec::new());
            for t in 0..seg.len() {
                obs.extend_from_slice(seg.q(t));
                obs.extend_from_slice(seg.targets(t));
                q.extend_from_slice(seg.q(t));
                a.extend_from_slice(seg.targets(t));
            }
            r.push_episode(&obs, &q, &a).unwrap();
        }
        r
    }

    #[test]
    fn the_residual_gradient_through_a_frozen_model_matches_finite_differences() {
        let data = joint_data(3, 6, 80, Plant::servo(), 3).unwrap();
        let mut model = JointWise::new(
            3,
            JointWiseConfig {
                hidden: vec![16, 16],
                ..JointWiseConfig::default()
            },
        )
        .unwrap();
        let fit = FitConfig {
            max_steps: 40,
            ..FitConfig::default()
        };
        model.fit(&data, &data, &fit, &mut |_| {}).unwrap();
        let r = rollouts(Plant::servo());
        let mut stats = RunningMeanStd::new(6);
        stats
            .update(ArrayView2::from_shape((r.len(), 6), &r.obs).unwrap())
            .unwrap();
        let config = ResidualConfig {
            hidden: vec![8],
            max_correction: 0.3,
            ..ResidualConfig::default()
        };
        let units = ActionUnits {
            per_rad: vec![1.0; 3],
            relative: false,
        };
        let policy = ResidualPolicy::new(6, 3, units, stats, config).unwrap();
        // Make the residual's output layer large enough to matter.
        let vars = policy.varmap.data().lock().unwrap().clone();
        let out_w = vars.get("out.weight").unwrap().clone();
        out_w
            .set(&(out_w.as_tensor().clone() * 50.0).unwrap())
            .unwrap();
        let index: Vec<usize> = r
            .sample_index(model.window())
            .into_iter()
            .take(64)
            .collect();
        let loss = |p: &ResidualPolicy| {
            f64::from(
                p.loss(&model, &r, &index, Correction::Training)
                    .unwrap()
                    .0
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let (l, _, _) = policy
            .loss(&model, &r, &index, Correction::Training)
            .unwrap();
        let grads = l.backward().unwrap();
        let w = vars.get("l0.weight").unwrap().clone();
        let g = grads
            .get(&w)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = w
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let dims = w.as_tensor().dims().to_vec();
        let mut checked = 0;
        for k in [0usize, 7, 19, 33, 41] {
            let eps = 1e-2f32;
            let at = |d: f32| {
                let mut v = base.clone();
                v[k] += d;
                w.set(&Tensor::from_vec(v, dims.as_slice(), &Device::Cpu).unwrap())
                    .unwrap();
                loss(&policy)
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
            w.set(&Tensor::from_vec(base.clone(), dims.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            if fd.abs() < 1e-7 {
                continue;
            }
            checked += 1;
            assert!(
                (fd - f64::from(g[k])).abs() < 0.05 * fd.abs() + 1e-6,
                "weight {k}: fd {fd} vs grad {}",
                g[k]
            );
        }
        assert!(
            checked >= 3,
            "only {checked} weights had a gradient to check"
        );
    }

    #[test]
    fn a_residual_makes_a_slower_hand_move_as_the_simulated_one() {
        // Simulation: the joints close 60% of the target error a step; the "real" hand
        // (the frozen model) only 30%: the residual must double the error it asks for,
        // a correction of a_t − q_t.
        let r = rollouts(Plant::FirstOrder { gain: 0.6 });
        let real = crate::MockDynamics::new(3, 2, 0.3).unwrap();
        let config = ResidualConfig {
            max_correction: 1.0,
            correction_weight: 0.0,
            learning_rate: 1e-3,
            epochs: 60.0,
            ..ResidualConfig::default()
        };
        let units = ActionUnits {
            per_rad: vec![2.0; 3],
            relative: false,
        };
        let mut policy = train_residual(&real, &r, units, &config, &mut |_, _| {}).unwrap();
        let report = policy.report().unwrap().clone();
        eprintln!("{report:?}");
        assert!(
            report.rmse_with_rad < 0.25 * report.rmse_without_rad,
            "{report:?}"
        );
        // In action units (×2 per radian), the correction is about 2·(a − q).
        let obs = Array2::from_shape_vec((1, 6), vec![0.1, -0.2, 0.0, 0.3, -0.1, 0.2]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let out = policy
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        for (i, want) in [0.4f32, 0.2, 0.4].iter().enumerate() {
            assert!(
                (out[[0, i]] - want).abs() < 0.12,
                "joint {i}: {} vs {want}",
                out[[0, i]]
            );
        }
        // Saved and loaded, it acts the same.
        let dir = std::env::temp_dir().join(format!("dex-ndm-residual-{}", std::process::id()));
        policy.save(&dir).unwrap();
        let mut back = ResidualPolicy::load(&dir).unwrap();
        assert_eq!(
            back.act(obs.view(), ActMode::Deterministic, &mut rng)
                .unwrap(),
            out
        );
        assert!(matches!(
            ResidualPolicy::load(&dir.join("missing")),
            Err(Error::Data { .. })
        ));

        // For a base policy with relative actions the same residual acts with the change
        // of its correction: the targets it adds up to are the correction itself.
        back.file.relative = true;
        let first = back
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        assert_eq!(
            first, out,
            "the first step's change is the whole correction"
        );
        let second = back
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        assert!(second.iter().all(|v| v.abs() < 1e-6), "{second:?}");
        let rows = ndarray::concatenate(ndarray::Axis(0), &[obs.view(), obs.view()]).unwrap();
        back.reset(0);
        let both = back
            .act(rows.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        // (A batch of two may round differently from a batch of one.)
        let close = |a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>| {
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
        };
        assert!(
            close(both.row(0), out.row(0)),
            "reset forgets environment 0: {both:?}"
        );
        assert!(
            close(both.row(1), out.row(0)),
            "environment 1 had no correction yet: {both:?}"
        );
    }
}
