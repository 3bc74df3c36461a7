//! Behaviour cloning and DAgger: distilling a teacher [`Policy`] (privileged state)
//! into a student that sees less.
//!
//! The student sees a subset of the environment's state vector, given as index ranges
//! ([`StudentPolicy`] keeps them and picks its inputs itself, so it acts on the
//! environment's full observation like any other policy). Its network is an MLP with
//! observation normalisation, trained by mean squared error against the teacher's
//! deterministic actions. [`dagger`] aggregates a dataset on disk
//! ([`crate::dataset`]): iteration `k` rolls out the teacher with probability
//! `β_k = beta · beta_decay^k` per environment and step, the student otherwise, labels
//! every visited state with the teacher's action, and trains the student further on
//! everything gathered so far (Ross et al. 2011).

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use dex_sim::VecEnv;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch::batch_obs;
use crate::checkpoint::{checkpoint_error, load_weights, read_checkpoint_meta, write_checkpoint};
use crate::convert::{to_array, to_tensor};
use crate::dataset::{DatasetWriter, gather_rows};
use crate::error::{Error, Result, invalid, invalid_setting};
use crate::nets::{Activation, Mlp, MlpConfig, init_seeded, new_store};
use crate::normalize::RunningMeanStd;
use crate::policy::{ActMode, Policy, check_observations};

/// Student network and its supervised training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BcConfig {
    /// Hidden widths of the student MLP.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// LayerNorm after every hidden layer.
    pub layer_norm: bool,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Rows per gradient step.
    pub batch_size: usize,
    /// Passes over the dataset per training call (per DAgger iteration).
    pub epochs: usize,
    /// Seed of initialisation and minibatch order.
    pub seed: u64,
}

impl Default for BcConfig {
    fn default() -> Self {
        Self {
            hidden: vec![256, 256],
            activation: Activation::Elu,
            layer_norm: false,
            learning_rate: 1e-3,
            batch_size: 256,
            epochs: 5,
            seed: 0,
        }
    }
}

impl BcConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            return Err(invalid_setting("bc.hidden", "widths must be positive"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid_setting("bc.learning_rate", "must be positive"));
        }
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(invalid_setting(
                "bc.batch_size and bc.epochs",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Which entries of the environment's state vector the student sees: half-open index
/// ranges `[start, end)`, in order.
fn check_keep(keep: &[[usize; 2]], observation_dim: usize) -> Result<usize> {
    if keep.is_empty() {
        return Err(invalid_setting(
            "student observation ranges",
            "the student must see at least one range",
        ));
    }
    let mut width = 0;
    for [a, b] in keep {
        if a >= b || *b > observation_dim {
            return Err(invalid_setting(
                "student observation ranges",
                format!("{a}..{b} is empty or outside the observation (width {observation_dim})"),
            ));
        }
        width += b - a;
    }
    Ok(width)
}

fn select(observations: ArrayView2<'_, f32>, keep: &[[usize; 2]], width: usize) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((observations.nrows(), width));
    for (mut dst, src) in out.rows_mut().into_iter().zip(observations.rows()) {
        let mut k = 0;
        for [a, b] in keep {
            for j in *a..*b {
                dst[k] = src[j];
                k += 1;
            }
        }
    }
    out
}

/// What a student checkpoint holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentCheckpointMeta {
    /// Network and training settings.
    pub bc: BcConfig,
    /// Width of the environment's observation the student picks from.
    pub observation_dim: usize,
    /// Action width.
    pub action_dim: usize,
    /// The ranges of the observation the student sees.
    pub keep: Vec<[usize; 2]>,
    /// Normalisation statistics of the seen entries.
    pub observation_stats: RunningMeanStd,
    /// Dataset rows the student was last trained on.
    pub rows: usize,
    /// Free-form description of the environment, for the caller.
    pub env: toml::Table,
}

/// A student: picks its ranges from the observation, normalises them and maps them to
/// an action with an MLP. Deterministic and stochastic modes act alike.
pub struct StudentPolicy {
    net: Mlp,
    varmap: VarMap,
    meta: StudentCheckpointMeta,
    width: usize,
}

impl std::fmt::Debug for StudentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudentPolicy")
            .field("net", &self.net)
            .field("keep", &self.meta.keep)
            .finish_non_exhaustive()
    }
}

impl StudentPolicy {
    /// An untrained student for observations of width `observation_dim`, seeing the
    /// ranges `keep`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad config or ranges.
    pub fn new(
        config: &BcConfig,
        observation_dim: usize,
        action_dim: usize,
        keep: Vec<[usize; 2]>,
        env: toml::Table,
    ) -> Result<Self> {
        config.validate()?;
        if action_dim == 0 {
            return Err(invalid("the student needs at least one action"));
        }
        let width = check_keep(&keep, observation_dim)?;
        let (varmap, vb) = new_store();
        let net = Mlp::new(
            &MlpConfig {
                input: width,
                hidden: config.hidden.clone(),
                output: action_dim,
                activation: config.activation,
                layer_norm: config.layer_norm,
            },
            &vb.pp("student"),
        )?;
        init_seeded(&varmap, config.seed, |_| 1.0)?;
        Ok(Self {
            net,
            varmap,
            meta: StudentCheckpointMeta {
                bc: config.clone(),
                observation_dim,
                action_dim,
                keep,
                observation_stats: RunningMeanStd::new(width),
                rows: 0,
                env,
            },
            width,
        })
    }

    /// The checkpoint description (config, ranges, statistics).
    pub fn meta(&self) -> &StudentCheckpointMeta {
        &self.meta
    }

    fn inputs(&self, observations: ArrayView2<'_, f32>) -> Result<Tensor> {
        let x = select(observations, &self.meta.keep, self.width);
        to_tensor(self.meta.observation_stats.normalize(x.view(), 5.0).view())
    }

    /// Writes `policy.safetensors` and `checkpoint.toml` (with a `[bc]` table) to `dir`.
    ///
    /// # Errors
    ///
    /// File-system or tensor errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_checkpoint(dir, &self.varmap, &self.meta)
    }

    /// Loads a checkpoint written by [`StudentPolicy::save`].
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, corrupt or mismatched checkpoint.
    pub fn load(dir: &Path) -> Result<Self> {
        let fail = |reason: String| checkpoint_error(dir, reason);
        let meta: StudentCheckpointMeta = read_checkpoint_meta(dir)?;
        let mut student = Self::new(
            &meta.bc,
            meta.observation_dim,
            meta.action_dim,
            meta.keep.clone(),
            meta.env.clone(),
        )
        .map_err(|e| fail(e.to_string()))?;
        if meta.observation_stats.dim() != student.width {
            return Err(fail("observation statistics of the wrong width".into()));
        }
        load_weights(dir, &mut student.varmap)?;
        student.meta = meta;
        Ok(student)
    }
}

impl Policy for StudentPolicy {
    fn observation_dim(&self) -> usize {
        self.meta.observation_dim
    }
    fn action_dim(&self) -> usize {
        self.meta.action_dim
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.meta.observation_dim)?;
        to_array(&self.net.forward(&self.inputs(observations)?)?)
    }
}

/// Supervised training of a [`StudentPolicy`] on (observation, teacher action) rows.
pub struct BcTrainer {
    student: StudentPolicy,
    opt: AdamW,
    rng: ChaCha8Rng,
    stats_fixed: bool,
}

impl std::fmt::Debug for BcTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BcTrainer")
            .field("student", &self.student)
            .finish_non_exhaustive()
    }
}

impl BcTrainer {
    /// Trains `student` with its own config's learning rate, batch size and seed.
    ///
    /// # Errors
    ///
    /// A tensor error building the optimiser.
    pub fn new(student: StudentPolicy) -> Result<Self> {
        let vars = student.varmap.all_vars();
        let opt = AdamW::new(
            vars,
            ParamsAdamW {
                lr: student.meta.bc.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        let rng = ChaCha8Rng::seed_from_u64(student.meta.bc.seed ^ 0xBC00);
        Ok(Self {
            student,
            opt,
            rng,
            stats_fixed: false,
        })
    }

    /// The student.
    pub fn student(&self) -> &StudentPolicy {
        &self.student
    }

    /// The student, for acting.
    pub fn student_mut(&mut self) -> &mut StudentPolicy {
        &mut self.student
    }

    /// Gives the student back.
    pub fn into_student(self) -> StudentPolicy {
        self.student
    }

    /// `config.epochs` passes of minibatch MSE regression over all rows (full
    /// observations, `N × observation_dim`, and teacher actions). The normalisation
    /// statistics are fitted on the first call's rows and kept afterwards, so the
    /// student's inputs do not shift under it. Returns the mean loss of the last pass.
    ///
    /// # Errors
    ///
    /// Mismatched shapes, no rows, NaN input, or divergence.
    pub fn fit(
        &mut self,
        observations: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
    ) -> Result<f64> {
        let meta = &self.student.meta;
        check_observations(observations, meta.observation_dim)?;
        let n = observations.nrows();
        if n == 0 || actions.dim() != (n, meta.action_dim) {
            return Err(invalid(format!(
                "behaviour cloning: {n} observation rows and {:?} actions (width {})",
                actions.dim(),
                meta.action_dim
            )));
        }
        if actions.iter().any(|v| !v.is_finite()) {
            return Err(invalid("behaviour cloning: non-finite teacher action"));
        }
        if !self.stats_fixed {
            let x = select(observations, &meta.keep, self.student.width);
            let mut stats = RunningMeanStd::new(self.student.width);
            stats.update(x.view())?;
            self.student.meta.observation_stats = stats;
            self.stats_fixed = true;
        }
        let x_all = observations.to_owned();
        let y_all = actions.to_owned();
        let bs = self.student.meta.bc.batch_size.min(n);
        let mut order: Vec<usize> = (0..n).collect();
        let mut last = f64::NAN;
        for _ in 0..self.student.meta.bc.epochs {
            order.shuffle(&mut self.rng);
            let (mut sum, mut count) = (0.0, 0usize);
            for idx in order.chunks(bs) {
                let xb = self.student.inputs(gather_rows(&x_all, idx).view())?;
                let yb = to_tensor(gather_rows(&y_all, idx).view())?;
                let loss = (self.student.net.forward(&xb)? - yb)?.sqr()?.mean_all()?;
                let v = f64::from(loss.to_scalar::<f32>()?);
                if !v.is_finite() {
                    return Err(Error::Diverged(format!("behaviour-cloning loss {v}")));
                }
                self.opt.backward_step(&loss)?;
                sum += v * idx.len() as f64;
                count += idx.len();
            }
            last = sum / count as f64;
        }
        self.student.meta.rows = n;
        Ok(last)
    }
}

/// DAgger settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaggerConfig {
    /// Iterations of collect, aggregate, train.
    pub iterations: usize,
    /// Environment steps (of the whole `VecEnv`) collected per iteration.
    pub steps_per_iteration: usize,
    /// Probability of executing the teacher's action at iteration 0.
    pub beta: f64,
    /// `β` is multiplied by this after every iteration.
    pub beta_decay: f64,
    /// Rows per dataset chunk file.
    pub chunk_rows: usize,
    /// The ranges of the state vector the student sees (`[start, end)`).
    pub keep: Vec<[usize; 2]>,
    /// The student and its training.
    pub bc: BcConfig,
    /// Seed of the environments and the teacher/student choice.
    pub seed: u64,
}

impl Default for DaggerConfig {
    fn default() -> Self {
        Self {
            iterations: 8,
            steps_per_iteration: 60,
            beta: 1.0,
            beta_decay: 0.5,
            chunk_rows: 8192,
            keep: Vec::new(),
            bc: BcConfig::default(),
            seed: 0,
        }
    }
}

/// What one DAgger iteration did.
#[derive(Debug, Clone, PartialEq)]
pub struct DaggerIteration {
    /// Iteration (from 0).
    pub iteration: usize,
    /// Teacher probability used while collecting.
    pub beta: f64,
    /// Rows in the dataset after aggregation.
    pub rows: usize,
    /// Episodes that ended while collecting.
    pub episodes: usize,
    /// Their success fraction (NaN when none ended).
    pub success_rate: f64,
    /// Mean regression loss of the last training pass.
    pub loss: f64,
}

/// Runs DAgger from `teacher` into a new student on `venv`, aggregating the dataset in
/// `dataset_dir` (created; it must not hold a dataset). `on_iteration` sees every
/// iteration's figures and the student so far (to evaluate or checkpoint it), and
/// returns [`ControlFlow::Break`] to stop after that iteration (a time budget).
///
/// # Errors
///
/// Mismatched widths, bad settings, environment, dataset or training errors.
pub fn dagger(
    teacher: &mut dyn Policy,
    venv: &mut VecEnv,
    dataset_dir: &Path,
    config: &DaggerConfig,
    env: toml::Table,
    mut on_iteration: impl FnMut(&DaggerIteration, &mut StudentPolicy) -> Result<ControlFlow<()>>,
) -> Result<StudentPolicy> {
    let n = venv.num_envs();
    let od = venv.observation_spec().state.dim();
    let (low, high) = (
        venv.action_space().low.clone(),
        venv.action_space().high.clone(),
    );
    let ad = low.len();
    if teacher.observation_dim() != od || teacher.action_dim() != ad {
        return Err(invalid(format!(
            "the teacher takes {} → {}, the environment gives {od} → {ad}",
            teacher.observation_dim(),
            teacher.action_dim()
        )));
    }
    if config.iterations == 0 || config.steps_per_iteration == 0 {
        return Err(invalid(
            "dagger.iterations and dagger.steps_per_iteration must be positive",
        ));
    }
    if !((0.0..=1.0).contains(&config.beta) && (0.0..=1.0).contains(&config.beta_decay)) {
        return Err(invalid(
            "dagger.beta and dagger.beta_decay must lie in [0, 1]",
        ));
    }
    let mut bc = BcTrainer::new(StudentPolicy::new(
        &config.bc,
        od,
        ad,
        config.keep.clone(),
        env.clone(),
    )?)?;
    let mut writer = DatasetWriter::create(dataset_dir, od, ad, config.chunk_rows, env)?;
    // The aggregated rows, also kept in memory so each iteration trains without reading
    // back what it has just written.
    let (mut all_x, mut all_y) = (Vec::<f32>::new(), Vec::<f32>::new());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xDA66);
    let (obs, _) = venv.reset(config.seed)?;
    let mut x = batch_obs(&obs, od)?;
    let mut beta = config.beta;
    for iteration in 0..config.iterations {
        let (mut episodes, mut successes) = (0usize, 0usize);
        for _ in 0..config.steps_per_iteration {
            check_observations(x.view(), od)?;
            let labels = teacher.act(x.view(), ActMode::Deterministic, &mut rng)?;
            let student = bc
                .student_mut()
                .act(x.view(), ActMode::Deterministic, &mut rng)?;
            let mut flat = Vec::with_capacity(n * ad);
            for i in 0..n {
                let row = if rng.random::<f64>() < beta {
                    labels.row(i)
                } else {
                    student.row(i)
                };
                flat.extend(
                    row.iter()
                        .zip(&low)
                        .zip(&high)
                        .map(|((v, l), h)| v.clamp(*l, *h)),
                );
            }
            let step = venv.step(&flat)?;
            for i in (0..n).filter(|&i| step.reset[i]) {
                teacher.reset(i);
                bc.student_mut().reset(i);
            }
            // Rows acted from on reset steps are not visited states of a transition.
            let visited: Vec<usize> = (0..n).filter(|&i| !step.reset[i]).collect();
            if !visited.is_empty() {
                let (vx, vy) = (gather_rows(&x, &visited), gather_rows(&labels, &visited));
                writer.push(vx.view(), vy.view())?;
                all_x.extend(vx.iter());
                all_y.extend(vy.iter());
            }
            for &i in &visited {
                if step.terminated[i] || step.truncated[i] {
                    episodes += 1;
                    successes += usize::from(step.infos[i].success);
                }
            }
            x = batch_obs(&step.obs, od)?;
        }
        writer.flush()?;
        let rows = all_y.len() / ad;
        let shape = Error::Shape;
        let loss = bc.fit(
            ArrayView2::from_shape((rows, od), &all_x).map_err(shape)?,
            ArrayView2::from_shape((rows, ad), &all_y).map_err(shape)?,
        )?;
        let it = DaggerIteration {
            iteration,
            beta,
            rows: writer.meta().rows(),
            episodes,
            success_rate: if episodes > 0 {
                successes as f64 / episodes as f64
            } else {
                f64::NAN
            },
            loss,
        };
        if on_iteration(&it, bc.student_mut())?.is_break() {
            break;
        }
        beta *= config.beta_decay;
    }
    Ok(bc.into_student())
}
