//! Distilling a privileged teacher into the Dex4D student by DAgger, as Dex4D's code
//! does it: the student acts, the teacher labels every visited state, the newest
//! `buffer_steps` steps of every environment form the training set, and each iteration
//! runs a few epochs of L1 behaviour cloning plus the L1 world-model loss.

use std::collections::VecDeque;

use candle_core::Tensor;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use dex_sim::VecEnv;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::student::PointTrackPolicy;
use crate::batch::batch_obs;
use crate::convert::to_tensor;
use crate::dataset::gather_rows;
use crate::error::{Error, Result, check_len, invalid_setting};
use crate::policy::{ActMode, Policy};

/// Settings of [`PointTrackDagger`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointTrackDaggerConfig {
    /// Steps of every environment kept for training (Dex4D: 16).
    pub buffer_steps: usize,
    /// Passes over the buffer per iteration (Dex4D: 5).
    pub epochs: usize,
    /// Minibatches per pass (Dex4D: 4).
    pub minibatches: usize,
    /// Adam learning rate (Dex4D: 1e-4, constant).
    pub learning_rate: f64,
    /// Probability that the teacher's action is executed instead of the student's
    /// (Dex4D: 0, the student always acts).
    pub beta: f64,
    /// Seed of the minibatch order and of `beta`'s draws.
    pub seed: u64,
}

impl Default for PointTrackDaggerConfig {
    /// Dex4D's loop with a CPU-sized buffer and fewer passes: 8 steps, 2 epochs × 4
    /// minibatches, learning rate 3e-4 (ours: the budget is minutes, not 20 hours).
    fn default() -> Self {
        Self {
            buffer_steps: 8,
            epochs: 2,
            minibatches: 4,
            learning_rate: 3e-4,
            beta: 0.0,
            seed: 0,
        }
    }
}

impl PointTrackDaggerConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.buffer_steps == 0 || self.epochs == 0 || self.minibatches == 0 {
            return Err(invalid_setting(
                "dagger",
                "buffer_steps, epochs and minibatches must be positive",
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid_setting("dagger.learning_rate", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(invalid_setting("dagger.beta", "must lie in [0, 1]"));
        }
        Ok(())
    }
}

/// What one [`PointTrackDagger::iterate`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PointTrackIteration {
    /// Iterations so far (1 after the first).
    pub iteration: usize,
    /// Environment steps so far (all environments).
    pub env_steps: u64,
    /// Mean L1 behaviour-cloning loss of the last pass.
    pub bc_loss: f64,
    /// Mean L1 world-model loss of the last pass (computed even when not trained).
    pub world_model_loss: f64,
    /// Episodes that ended during this iteration's step.
    pub episodes: usize,
    /// Successes among them.
    pub successes: usize,
}

/// One step of every environment, labelled.
struct Chunk {
    obs: Array2<f32>,
    labels: Array2<f32>,
    /// Next joint positions then velocities.
    next: Array2<f32>,
}

/// DAgger for a [`PointTrackPolicy`] on a [`VecEnv`]; the teacher is any [`Policy`]
/// on the same observations (it reads the privileged entries the student does not).
pub struct PointTrackDagger {
    trainer: PointTrackTrainer,
    venv: VecEnv,
    config: PointTrackDaggerConfig,
    rng: ChaCha8Rng,
    obs: Array2<f32>,
    buffer: VecDeque<Chunk>,
    iteration: usize,
    env_steps: u64,
}

impl std::fmt::Debug for PointTrackDagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointTrackDagger")
            .field("config", &self.config)
            .field("iteration", &self.iteration)
            .finish_non_exhaustive()
    }
}

/// Mean absolute difference.
fn l1(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    (a - b)?.abs()?.mean_all()
}

/// Supervised training of a [`PointTrackPolicy`]: Adam on the L1 behaviour-cloning
/// loss plus (when the config keeps it) the L1 world-model loss, Dex4D's Eq. 3.
pub struct PointTrackTrainer {
    student: PointTrackPolicy,
    opt: AdamW,
}

impl std::fmt::Debug for PointTrackTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointTrackTrainer")
            .field("student", &self.student)
            .finish_non_exhaustive()
    }
}

impl PointTrackTrainer {
    /// Adam (no weight decay) at `learning_rate` on every variable of `student`.
    ///
    /// # Errors
    ///
    /// A non-positive learning rate, or a tensor error.
    pub fn new(student: PointTrackPolicy, learning_rate: f64) -> Result<Self> {
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(invalid_setting("learning_rate", "must be positive"));
        }
        let opt = AdamW::new(
            student.varmap.all_vars(),
            ParamsAdamW {
                lr: learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self { student, opt })
    }

    /// The student.
    pub fn student(&self) -> &PointTrackPolicy {
        &self.student
    }

    /// One gradient step on a minibatch: observations (`B × observation_dim`), the
    /// teacher's actions (`B × A`) and the world-model targets (`B × 2J`: next joint
    /// positions then velocities, see [`world_model_target`]). Returns the L1
    /// behaviour-cloning and world-model losses (the latter computed, and reported,
    /// even when the config leaves it out of the gradient).
    ///
    /// # Errors
    ///
    /// Mismatched widths, NaN input, or a diverging loss.
    pub fn step(
        &mut self,
        observations: ArrayView2<'_, f32>,
        labels: ArrayView2<'_, f32>,
        next: ArrayView2<'_, f32>,
    ) -> Result<(f64, f64)> {
        let b = observations.nrows();
        let j = self.student.meta.inputs.qpos.len();
        check_len("teacher action rows", b, labels.nrows())?;
        check_len(
            "teacher action width",
            self.student.meta.action_dim,
            labels.ncols(),
        )?;
        check_len("world-model target rows", b, next.nrows())?;
        check_len("world-model target width", 2 * j, next.ncols())?;
        let batch = self.student.batch(observations)?;
        let out = self.student.net.forward(&batch)?;
        let bc = l1(&out.action, &to_tensor(labels)?)?;
        let wm = (l1(
            &out.next_qpos,
            &to_tensor(next.slice_axis(Axis(1), Slice::from(..j)))?,
        )? + l1(
            &out.next_qvel,
            &to_tensor(next.slice_axis(Axis(1), Slice::from(j..)))?,
        )?)?;
        let loss = if self.student.meta.point_track.world_model {
            (&bc + &wm)?
        } else {
            bc.clone()
        };
        let (bv, wv) = (
            f64::from(bc.to_scalar::<f32>()?),
            f64::from(wm.to_scalar::<f32>()?),
        );
        if !(bv.is_finite() && wv.is_finite()) {
            return Err(Error::Diverged(format!(
                "point-track losses: bc {bv}, world model {wv}"
            )));
        }
        self.opt.backward_step(&loss)?;
        Ok((bv, wv))
    }

    /// Gives the student back.
    pub fn into_student(self) -> PointTrackPolicy {
        self.student
    }
}

impl PointTrackDagger {
    /// Starts DAgger: resets `venv` with `seed`.
    ///
    /// # Errors
    ///
    /// Bad settings, or a student whose widths do not fit `venv`.
    pub fn new(
        student: PointTrackPolicy,
        mut venv: VecEnv,
        config: PointTrackDaggerConfig,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let od = venv.observation_spec().state.dim();
        check_len("observation width", student.observation_dim(), od)?;
        check_len(
            "action width",
            student.action_dim(),
            venv.action_space().dim(),
        )?;
        let trainer = PointTrackTrainer::new(student, config.learning_rate)?;
        let (obs, _) = venv.reset(seed)?;
        let obs = batch_obs(&obs, od)?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xD4D4),
            trainer,
            venv,
            config,
            obs,
            buffer: VecDeque::new(),
            iteration: 0,
            env_steps: 0,
        })
    }

    /// The student.
    pub fn student(&self) -> &PointTrackPolicy {
        &self.trainer.student
    }

    /// Gives the student back, with its environment-step count.
    pub fn into_student(self) -> PointTrackPolicy {
        let mut student = self.trainer.student;
        student.meta.env_steps = self.env_steps;
        student
    }

    /// The training set as it stands: observations, teacher actions and world-model
    /// targets (next joint positions then velocities), row for row.
    ///
    /// # Errors
    ///
    /// None in practice (the buffer's blocks share their widths).
    pub fn training_set(&self) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
        let cat = |f: &dyn Fn(&Chunk) -> ndarray::ArrayView2<'_, f32>| -> Result<Array2<f32>> {
            let views: Vec<_> = self.buffer.iter().map(f).collect();
            if views.is_empty() {
                return Ok(Array2::zeros((0, 0)));
            }
            Ok(ndarray::concatenate(Axis(0), &views)?)
        };
        Ok((
            cat(&|c| c.obs.view())?,
            cat(&|c| c.labels.view())?,
            cat(&|c| c.next.view())?,
        ))
    }

    /// One iteration: one step of every environment (the student acts, or the teacher
    /// with probability `beta`; the teacher labels), then training on the buffer.
    ///
    /// # Errors
    ///
    /// Environment errors, width mismatches, or a diverging loss.
    pub fn iterate(&mut self, teacher: &mut dyn Policy) -> Result<PointTrackIteration> {
        let n = self.venv.num_envs();
        let od = self.obs.ncols();
        check_len("teacher observation width", teacher.observation_dim(), od)?;
        let mut unused = ChaCha8Rng::seed_from_u64(0);
        let labels = teacher.act(self.obs.view(), ActMode::Deterministic, &mut unused)?;
        check_len(
            "teacher action width",
            labels.ncols(),
            self.trainer.student.action_dim(),
        )?;
        let own = self
            .trainer
            .student
            .act(self.obs.view(), ActMode::Deterministic, &mut unused)?;
        let mut exec = Vec::with_capacity(labels.len());
        for i in 0..n {
            let src = if self.config.beta > 0.0 && self.rng.random::<f64>() < self.config.beta {
                &labels
            } else {
                &own
            };
            exec.extend(src.row(i).iter().map(|v| v.clamp(-1.0, 1.0)));
        }
        let step = self.venv.step(&exec)?;
        self.env_steps += n as u64;
        let inputs = &self.trainer.student.meta.inputs;
        let (jp, jv) = (inputs.qpos.clone(), inputs.qvel.clone());
        let j = jp.len();
        let kept: Vec<usize> = (0..n).filter(|&i| !step.reset[i]).collect();
        let mut next = Array2::zeros((kept.len(), 2 * j));
        for (r, &i) in kept.iter().enumerate() {
            let target = world_model_target(&step.obs[i].state, &jp, &jv);
            next.row_mut(r).assign(&ndarray::ArrayView1::from(&target));
        }
        self.buffer.push_back(Chunk {
            obs: gather_rows(&self.obs, &kept),
            labels: gather_rows(&labels, &kept),
            next,
        });
        while self.buffer.len() > self.config.buffer_steps {
            self.buffer.pop_front();
        }
        let (mut episodes, mut successes) = (0, 0);
        for i in 0..n {
            if !step.reset[i] && (step.terminated[i] || step.truncated[i]) {
                episodes += 1;
                successes += usize::from(step.infos[i].success);
            }
            self.obs
                .row_mut(i)
                .assign(&ndarray::ArrayView1::from(&step.obs[i].state));
        }
        let (bc_loss, world_model_loss) = self.train()?;
        self.iteration += 1;
        Ok(PointTrackIteration {
            iteration: self.iteration,
            env_steps: self.env_steps,
            bc_loss,
            world_model_loss,
            episodes,
            successes,
        })
    }

    /// `epochs` passes of `minibatches` minibatches over the buffer; the mean losses of
    /// the last pass.
    fn train(&mut self) -> Result<(f64, f64)> {
        let (x, y, t) = self.training_set()?;
        let rows = x.nrows();
        if rows == 0 {
            return Ok((f64::NAN, f64::NAN));
        }
        let per = rows.div_ceil(self.config.minibatches);
        let mut order: Vec<usize> = (0..rows).collect();
        let (mut bc_sum, mut wm_sum, mut count) = (0.0, 0.0, 0usize);
        for _ in 0..self.config.epochs {
            order.shuffle(&mut self.rng);
            (bc_sum, wm_sum, count) = (0.0, 0.0, 0);
            for idx in order.chunks(per) {
                let (b, w) = self.trainer.step(
                    gather_rows(&x, idx).view(),
                    gather_rows(&y, idx).view(),
                    gather_rows(&t, idx).view(),
                )?;
                bc_sum += b * idx.len() as f64;
                wm_sum += w * idx.len() as f64;
                count += idx.len();
            }
        }
        Ok((bc_sum / count as f64, wm_sum / count as f64))
    }
}

/// The world-model targets of one transition: the next observation's joint positions
/// then velocities (what [`PointTrackDagger`] trains the heads on).
pub fn world_model_target(
    next_observation: &[f32],
    qpos: &std::ops::Range<usize>,
    qvel: &std::ops::Range<usize>,
) -> Vec<f32> {
    next_observation[qpos.clone()]
        .iter()
        .chain(&next_observation[qvel.clone()])
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn settings_are_checked() {
        assert!(PointTrackDaggerConfig::default().validate().is_ok());
        let bad = PointTrackDaggerConfig {
            beta: 2.0,
            ..PointTrackDaggerConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("beta"));
    }

    #[test]
    fn world_model_target_reads_the_next_observation() {
        let next = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            world_model_target(&next, &(1..3), &(4..6)),
            vec![1.0, 2.0, 4.0, 5.0]
        );
    }
}
