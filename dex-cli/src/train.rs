//! `dex train` and `dex eval`: reinforcement learning on dex-sim tasks with dex-policy.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dex_core::HandModel;
use dex_policy::{
    ActMode, PpoConfig, PpoTrainer, SacConfig, SacTrainer, Trainer, evaluate, load_checkpoint,
};
use dex_sim::{EnvSpec, TaskConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::plot::{Panel, Series, write_png};
use crate::stdout::output;

/// `dex train ...`
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Proximal Policy Optimization (on-policy, Gaussian MLP policy).
    Ppo(PpoArgs),
    /// Soft actor–critic (off-policy; C51 critics and LayerNorm by default, Squint's recipe).
    Sac(SacArgs),
    /// DAgger: distil a trained teacher checkpoint into a student that sees part of the state.
    Dagger(DaggerArgs),
}

/// Arguments of `dex train dagger`.
#[derive(Debug, Args)]
pub struct DaggerArgs {
    /// The teacher: a checkpoint directory written by `dex train` (its task and hand are
    /// used), or `reach-ik` for the scripted inverse-kinematics expert on `reach`.
    #[arg(long)]
    teacher: String,
    /// Hand of the `reach-ik` expert (`leap`, `allegro` or a URDF path).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// What the student sees: half-open ranges of the state vector, e.g. `0..112,124..136`
    /// (LEAP reach: proprioception and targets, without fingertip positions).
    #[arg(long)]
    keep: String,
    /// Seed of the student, the environments and the teacher/student mixing.
    #[arg(long)]
    seed: Option<u64>,
    /// Wall-clock budget (minutes): no new iteration starts after it.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Output directory: student checkpoint, dataset/, config.toml, metrics.csv.
    #[arg(long)]
    out: PathBuf,
    /// A TOML config file (see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set dagger.iterations=4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config and exit.
    #[arg(long)]
    print_config: bool,
}

/// The config file of `dex train dagger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaggerFile {
    /// The run (`checkpoint_every` and `success_window` are unused here).
    pub run: RunSettings,
    /// Parallel environments while collecting.
    pub num_envs: usize,
    /// DAgger and the student (`dagger.keep` comes from --keep).
    pub dagger: dex_policy::DaggerConfig,
}

impl Default for DaggerFile {
    fn default() -> Self {
        Self {
            run: RunSettings::default(),
            num_envs: 32,
            dagger: dex_policy::DaggerConfig::default(),
        }
    }
}

/// `a..b,c..d` → `[[a, b], [c, d]]`.
fn parse_ranges(text: &str) -> Result<Vec<[usize; 2]>> {
    text.split(',')
        .map(|part| {
            let (a, b) = part
                .trim()
                .split_once("..")
                .with_context(|| format!("--keep: `{part}` is not START..END"))?;
            let a: usize = a
                .trim()
                .parse()
                .with_context(|| format!("--keep: `{part}`"))?;
            let b: usize = b
                .trim()
                .parse()
                .with_context(|| format!("--keep: `{part}`"))?;
            if a >= b {
                bail!("--keep: `{part}` is empty (START must be below END)");
            }
            Ok([a, b])
        })
        .collect()
}

fn run_dagger(a: DaggerArgs) -> Result<()> {
    let mut file: DaggerFile = load_config(DaggerFile::default(), a.config.as_deref(), &a.sets)?;
    file.dagger.keep = parse_ranges(&a.keep)?;
    if let Some(s) = a.seed {
        file.dagger.seed = s;
        file.dagger.bc.seed = s;
    }
    if a.print_config {
        return output(&toml::to_string(&file)?);
    }
    file.run.validate()?;
    if file.num_envs == 0 {
        bail!("num_envs must be positive");
    }
    if !(a.minutes.is_finite() && a.minutes > 0.0) {
        bail!("--minutes must be positive, got {}", a.minutes);
    }
    let (mut teacher, env) = if a.teacher == "reach-ik" {
        let env = EnvSpec {
            task: "reach".into(),
            hand: a.hand.clone(),
            obs: "state".into(),
            config: dex_sim::TaskConfig::default(),
        };
        let model =
            HandModel::load(&a.hand).with_context(|| format!("loading hand `{}`", a.hand))?;
        let expert = dex_policy::ReachIkExpert::new(model, env.config.history)?;
        let teacher = dex_policy::LoadedCheckpoint {
            algorithm: "reach-ik expert",
            policy: Box::new(expert),
            env: env.to_table()?,
            env_steps: 0,
        };
        (teacher, env)
    } else {
        let teacher = load_checkpoint(Path::new(&a.teacher))?;
        let env = EnvSpec::from_table(&teacher.env)?;
        (teacher, env)
    };
    if a.out.join(dex_policy::ppo::META_FILE).exists() {
        bail!(
            "{} already holds a checkpoint; choose another --out",
            a.out.display()
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(a.out.join("config.toml"), toml::to_string(&file)?)?;
    let eval = |policy: &mut dyn dex_policy::Policy| -> Result<dex_policy::EvalResult> {
        let mut venv = env.build(file.run.eval_envs)?;
        Ok(evaluate(
            policy,
            &mut venv,
            file.run.eval_episodes,
            file.dagger.seed.wrapping_add(1),
            ActMode::Deterministic,
        )?)
    };
    let teacher_result = eval(teacher.policy.as_mut())?;
    output(&format!(
        "teacher ({} from {}) success {}",
        teacher.algorithm, a.teacher, teacher_result.success_rate
    ))?;
    let mut venv = env.build(file.num_envs)?;
    let mut csv = std::fs::File::create(a.out.join("metrics.csv"))?;
    writeln!(
        csv,
        "iteration,wall_s,beta,rows,episodes,rollout_success,loss"
    )?;
    let start = Instant::now();
    let budget = Duration::from_secs_f64(a.minutes * 60.0);
    let config = file.dagger.clone();
    let mut done = 0usize;
    let student = dex_policy::dagger(
        teacher.policy.as_mut(),
        &mut venv,
        &a.out.join("dataset"),
        &config,
        env.to_table()?,
        |it, _student| {
            done += 1;
            let _ = writeln!(
                csv,
                "{},{:.3},{},{},{},{},{}",
                it.iteration,
                start.elapsed().as_secs_f64(),
                it.beta,
                it.rows,
                it.episodes,
                it.success_rate,
                it.loss
            );
            eprintln!(
                "iteration {} beta {:.3} rows {} rollout success {:.2} loss {:.5}",
                it.iteration, it.beta, it.rows, it.success_rate, it.loss
            );
            Ok(if start.elapsed() >= budget {
                eprintln!("the time budget ended after {done} iterations");
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            })
        },
    )?;
    let mut student = student;
    student.save(&a.out)?;
    let r = eval(&mut student)?;
    output(&format!(
        "student trained on {} rows in {:.1} min; checkpoint, dataset/, config.toml and metrics.csv in {}",
        student.meta().rows,
        start.elapsed().as_secs_f64() / 60.0,
        a.out.display()
    ))?;
    output(&format!(
        "recovered {:.3} of the teacher's success",
        if teacher_result.success_rate > 0.0 {
            r.success_rate / teacher_result.success_rate
        } else {
            f64::NAN
        }
    ))?;
    output(&format!("success {}", r.success_rate))
}

/// Arguments every `dex train` takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Task: reach, rotate, anypose, anygrasp.
    #[arg(long, default_value = "reach")]
    task: String,
    /// Built-in hand (`leap`, `allegro`) or a URDF path.
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Seed of initialisation, exploration and environments (default: the config's).
    #[arg(long)]
    seed: Option<u64>,
    /// Wall-clock budget of training (minutes); evaluation comes after it.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Output directory: checkpoint, config.toml, metrics.csv, curve.png.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A TOML config file (see --print-config for every key and its default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set ppo.num_envs=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config (defaults, file and --set applied) and exit.
    #[arg(long)]
    print_config: bool,
    /// Continue from the checkpoint in --out instead of starting afresh.
    #[arg(long)]
    resume: bool,
}

/// Arguments of `dex train ppo`.
#[derive(Debug, Args)]
pub struct PpoArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// Observation kind for SAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObsKind {
    /// The task's state vector.
    State,
    /// Depth images squinted to low resolution.
    Depth,
}

/// Arguments of `dex train sac`.
#[derive(Debug, Args)]
pub struct SacArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Observations: the task's state vector or squinted depth images.
    #[arg(long, value_enum, default_value = "state")]
    obs: ObsKind,
}

/// Arguments of `dex eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint directory written by `dex train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Episodes to evaluate.
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Seed of the evaluation environments.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Parallel environments.
    #[arg(long, default_value_t = 25)]
    envs: usize,
    /// Sample actions instead of acting with the mean.
    #[arg(long)]
    stochastic: bool,
    /// Evaluate under changed task settings, e.g. `--set task.dt=0.002 --set
    /// task.substeps=25` (keys as in `dex train`'s `[task]` table; repeatable). Without
    /// it the checkpoint's own settings are used.
    #[arg(long = "set", value_name = "task.KEY=VALUE")]
    sets: Vec<String>,
}

/// The part of a training config `dex eval --set` may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalOverrides {
    /// The task's settings.
    task: TaskConfig,
}

/// Settings of the training run itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Episodes of the final evaluation.
    pub eval_episodes: usize,
    /// Parallel environments of the evaluation.
    pub eval_envs: usize,
    /// Write a checkpoint every this many iterations (PPO updates, SAC environment steps).
    pub checkpoint_every: usize,
    /// Episodes in the moving window of the success curve.
    pub success_window: usize,
    /// Stop after this many iterations even if time is left (0: only the time budget).
    /// With a fixed count, the same seed gives the same checkpoint bytes.
    pub max_iterations: usize,
}

impl RunSettings {
    fn with_checkpoint_every(checkpoint_every: usize) -> Self {
        Self {
            eval_episodes: 100,
            eval_envs: 25,
            checkpoint_every,
            success_window: 200,
            max_iterations: 0,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.eval_episodes == 0 || self.eval_envs == 0 {
            bail!("run.eval_episodes and run.eval_envs must be positive");
        }
        if self.checkpoint_every == 0 || self.success_window == 0 {
            bail!("run.checkpoint_every and run.success_window must be positive");
        }
        Ok(())
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        Self::with_checkpoint_every(20)
    }
}

/// The config file of `dex train ppo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoFile {
    /// The run.
    pub run: RunSettings,
    /// The task's settings.
    pub task: TaskConfig,
    /// PPO.
    pub ppo: PpoConfig,
}

impl Default for PpoFile {
    fn default() -> Self {
        Self {
            run: RunSettings::with_checkpoint_every(20),
            task: TaskConfig::default(),
            ppo: PpoConfig::default(),
        }
    }
}

/// The task settings `dex train` starts from on `reach` with state observations,
/// measured to learn faster there than [`TaskConfig::default`].
///
/// Relative actions ([`dex_sim::ActionMode::Relative`], 0.25 rad per unit action and
/// control step): the joint targets integrate the actions, so the policy only has to
/// push each finger the right way until it arrives, where absolute targets had to be
/// exact (with them PPO's failures were near misses, fingertips settled 2–8 cm short).
/// PPO on one thread, 10 min: 0.79 / 0.41 / 0.58 success against 0.36 / 0.46 / 0.36
/// with absolute targets over seeds 1–3; 0.15 and 0.4 rad did worse. SAC: 0.21 against
/// 0.02 (plain), 0.09 against 0.02 (C51 + LayerNorm). Physics at 5 ms, 10 substeps
/// (the same 50 ms control period): 2.2× the control steps per second of physics; the
/// dex-sim README measures what the coarser step changes, and the policies do as well
/// on the 2 ms physics (`dex eval --set task.dt=0.002 --set task.substeps=25`).
/// Figures in the workspace README.
pub fn reach_task_settings(task: &mut TaskConfig) {
    task.action_mode = dex_sim::ActionMode::Relative;
    task.relative_scale = 0.25;
    task.dt = 0.005;
    task.substeps = 10;
}

impl PpoFile {
    /// The defaults of `dex train ppo --task TASK`: [`PpoConfig::default`] and
    /// [`TaskConfig::default`] except where a task has settings measured to learn faster
    /// on it.
    ///
    /// `reach`: [`reach_task_settings`]. A fingertip gets to its target within a few
    /// control steps, so a short horizon (γ 0.9; 0.95 did worse) keeps later steps'
    /// exploration out of an action's advantage; more optimisation per sample (10
    /// epochs of 8 minibatches) since the environment, not the update, is the cost
    /// here, with the learning rate steered by the KL
    /// ([`dex_policy::ppo::LrSchedule::Adaptive`] towards 0.2) instead of a KL stop,
    /// which here ended nearly every update after one epoch; a smaller initial
    /// exploration (log std −1.6); 64 environments (rollouts of 2,048 samples), which
    /// did better than 32 in the same wall-clock time. Measured in the workspace README.
    pub fn for_task(task: &str) -> Self {
        let mut file = Self::default();
        if task == "reach" {
            let p = &mut file.ppo;
            p.gamma = 0.9;
            p.epochs = 10;
            p.minibatches = 8;
            p.lr_schedule = dex_policy::ppo::LrSchedule::Adaptive;
            p.target_kl = 0.2;
            p.init_log_std = -1.6;
            p.num_envs = 64;
            reach_task_settings(&mut file.task);
        }
        file
    }
}

/// The config file of `dex train sac`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacFile {
    /// The run.
    pub run: RunSettings,
    /// The task's settings.
    pub task: TaskConfig,
    /// SAC.
    pub sac: SacConfig,
}

impl Default for SacFile {
    fn default() -> Self {
        Self {
            run: RunSettings::with_checkpoint_every(500),
            task: TaskConfig::default(),
            sac: SacConfig::default(),
        }
    }
}

impl SacFile {
    /// The defaults of `dex train sac --task TASK --obs OBS`: [`SacConfig::default`]
    /// (Squint's recipe) and [`TaskConfig::default`], except on `reach` from state,
    /// which starts from [`reach_task_settings`]. From depth the task keeps its
    /// defaults (absolute targets, 2 ms physics), where its figures were measured.
    pub fn for_task(task: &str, obs: ObsKind) -> Self {
        let mut file = Self::default();
        if task == "reach" && obs == ObsKind::State {
            reach_task_settings(&mut file.task);
        }
        file
    }
}

/// Runs `dex train ...`.
pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Dagger(a) => run_dagger(a),
        TrainCommand::Ppo(a) => {
            let mut file: PpoFile = load_config(
                PpoFile::for_task(&a.common.task),
                a.common.config.as_deref(),
                &a.common.sets,
            )?;
            if let Some(s) = a.common.seed {
                file.ppo.seed = s;
            }
            if a.common.print_config {
                return output(&toml::to_string(&file)?);
            }
            file.run.validate()?;
            file.ppo.validate()?;
            let env = EnvSpec::state(&a.common.task, &a.common.hand, file.task.clone());
            let venv = env.build(file.ppo.num_envs)?;
            let seed = file.ppo.seed;
            let trainer = PpoTrainer::new(venv, file.ppo.clone(), env.to_table()?)?;
            train_loop(
                Box::new(trainer),
                &a.common,
                &file.run,
                &env,
                seed,
                &toml::to_string(&file)?,
            )
        }
        TrainCommand::Sac(a) => {
            let mut file: SacFile = load_config(
                SacFile::for_task(&a.common.task, a.obs),
                a.common.config.as_deref(),
                &a.common.sets,
            )?;
            if let Some(s) = a.common.seed {
                file.sac.seed = s;
            }
            if a.common.print_config {
                return output(&toml::to_string(&file)?);
            }
            file.run.validate()?;
            file.sac.validate()?;
            let mut env = EnvSpec::state(&a.common.task, &a.common.hand, file.task.clone());
            if a.obs == ObsKind::Depth {
                env.obs = "depth".into();
            }
            let venv = env.build(file.sac.num_envs)?;
            let seed = file.sac.seed;
            let trainer = SacTrainer::new(venv, file.sac.clone(), env.to_table()?)?;
            train_loop(
                Box::new(trainer),
                &a.common,
                &file.run,
                &env,
                seed,
                &toml::to_string(&file)?,
            )
        }
    }
}

/// `base` (the defaults), then the file's keys over it, then each `--set`, then the
/// check for unknown keys and wrong types.
fn load_config<T: Serialize + DeserializeOwned>(
    base: T,
    file: Option<&Path>,
    sets: &[String],
) -> Result<T> {
    let mut table = toml::Table::try_from(&base)?;
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let overlay: toml::Table =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        merge_tables(&mut table, overlay);
        // The file alone must make sense (unknown keys, types), so its errors name it.
        let _: T = toml::Value::Table(table.clone())
            .try_into()
            .with_context(|| format!("in {}", path.display()))?;
    }
    for s in sets {
        let (key, value) = s
            .split_once('=')
            .with_context(|| format!("--set `{s}`: expected KEY=VALUE"))?;
        let value = parse_value(value.trim());
        set_key(&mut table, key.trim(), value).with_context(|| format!("--set `{s}`"))?;
    }
    toml::Value::Table(table)
        .try_into()
        .context("the config after --set")
}

/// Writes `overlay`'s keys into `table`, descending into tables both have.
fn merge_tables(table: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (table.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => {
                merge_tables(inner, over);
            }
            (_, value) => {
                table.insert(key, value);
            }
        }
    }
}

/// A TOML value from text: numbers, booleans, arrays and quoted strings as TOML reads
/// them, anything else as a bare string.
fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| text.into()),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|p| !p.is_empty()).context("empty key")?;
    let mut t = table;
    for p in parts {
        t = match t.get_mut(p) {
            Some(toml::Value::Table(inner)) => inner,
            _ => bail!("unknown key `{key}` (see --print-config)"),
        };
    }
    match t.get(last) {
        Some(old) if old.type_str() == value.type_str() => {}
        // An integer where a float is expected.
        Some(toml::Value::Float(_)) if value.is_integer() => {
            let v = value.as_integer().unwrap_or(0) as f64;
            t.insert(last.to_string(), toml::Value::Float(v));
            return Ok(());
        }
        Some(old) => bail!(
            "`{key}` takes {}, got {}",
            with_article(old.type_str()),
            with_article(value.type_str())
        ),
        None => bail!("unknown key `{key}` (see --print-config)"),
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// `an integer`, `a float`, ...
fn with_article(kind: &str) -> String {
    let vowel = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {kind}", if vowel { "an" } else { "a" })
}

/// Appends metrics rows to `metrics.csv`, keeping what the plot needs.
struct MetricsLog {
    file: std::fs::File,
    header_written: bool,
    /// (minutes, windowed success, windowed return).
    curve: Vec<(f64, f64, f64)>,
    window: std::collections::VecDeque<(bool, f64)>,
    window_len: usize,
    time_offset: f64,
}

impl MetricsLog {
    fn open(path: &Path, resume: bool, window_len: usize) -> Result<Self> {
        let mut curve = Vec::new();
        let mut time_offset = 0.0;
        let mut header_written = false;
        if resume && path.exists() {
            let text = std::fs::read_to_string(path)?;
            let mut lines = text.lines();
            if let Some(header) = lines.next() {
                header_written = true;
                let cols: Vec<&str> = header.split(',').collect();
                let col = |name: &str| cols.iter().position(|c| *c == name);
                let (tw, sw, rw) = (col("wall_s"), col("success_window"), col("return_window"));
                for line in lines {
                    let v: Vec<f64> = line
                        .split(',')
                        .map(|x| x.parse().unwrap_or(f64::NAN))
                        .collect();
                    let get =
                        |c: Option<usize>| c.and_then(|c| v.get(c).copied()).unwrap_or(f64::NAN);
                    let t = get(tw);
                    if t.is_finite() {
                        time_offset = t;
                    }
                    curve.push((t / 60.0, get(sw), get(rw)));
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            file,
            header_written,
            curve,
            window: std::collections::VecDeque::new(),
            window_len,
            time_offset,
        })
    }

    /// Records one iteration; returns the windowed success (NaN before any episode).
    fn record(
        &mut self,
        m: &dex_policy::Metrics,
        wall_s: f64,
        episode_outcomes: &[(bool, f64)],
    ) -> Result<f64> {
        for o in episode_outcomes {
            self.window.push_back(*o);
            if self.window.len() > self.window_len {
                self.window.pop_front();
            }
        }
        let (sw, rw) = if self.window.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            let k = self.window.len() as f64;
            (
                self.window.iter().filter(|o| o.0).count() as f64 / k,
                self.window.iter().map(|o| o.1).sum::<f64>() / k,
            )
        };
        let t = self.time_offset + wall_s;
        if !self.header_written {
            let mut h = String::from(
                "iteration,wall_s,env_steps,episodes,success_rate,mean_return,success_window,return_window",
            );
            for (name, _) in &m.extra {
                h.push(',');
                h.push_str(name);
            }
            writeln!(self.file, "{h}")?;
            self.header_written = true;
        }
        let mut row = format!(
            "{},{t:.3},{},{},{},{},{sw},{rw}",
            m.iteration, m.env_steps, m.episodes, m.success_rate, m.mean_return
        );
        for (_, v) in &m.extra {
            row.push_str(&format!(",{v}"));
        }
        writeln!(self.file, "{row}")?;
        self.curve.push((t / 60.0, sw, rw));
        Ok(sw)
    }

    fn plot(&self, path: &Path, algorithm: &str, env: &EnvSpec) -> Result<()> {
        let series = |f: &dyn Fn(&(f64, f64, f64)) -> f64, name: &str| Series {
            name: name.to_string(),
            points: self.curve.iter().map(|p| (p.0, f(p))).collect(),
        };
        let panels = [
            Panel {
                title: format!(
                    "{algorithm} on {} ({}): success, last {} episodes",
                    env.task, env.hand, self.window_len
                ),
                x_label: "wall-clock minutes".into(),
                y_label: "success".into(),
                series: vec![series(&|p| p.1, "")],
            },
            Panel {
                title: "episode return (same window)".into(),
                x_label: "wall-clock minutes".into(),
                y_label: "return".into(),
                series: vec![series(&|p| p.2, "")],
            },
        ];
        write_png(path, &panels, 800, 320)
    }
}

fn train_loop(
    mut trainer: Box<dyn Trainer>,
    args: &CommonArgs,
    run: &RunSettings,
    env: &EnvSpec,
    seed: u64,
    config_text: &str,
) -> Result<()> {
    let out = args
        .out
        .as_deref()
        .context("give --out DIR (where the checkpoint, config, metrics and curve go)")?;
    if !(args.minutes.is_finite() && args.minutes > 0.0) {
        bail!("--minutes must be positive, got {}", args.minutes);
    }
    let has_checkpoint = out.join(dex_policy::ppo::META_FILE).exists();
    if args.resume {
        if !has_checkpoint {
            bail!("--resume: {} holds no checkpoint", out.display());
        }
        trainer.resume(out)?;
        eprintln!(
            "resumed from {} at {} environment steps",
            out.display(),
            trainer.env_steps()
        );
    } else if has_checkpoint {
        bail!(
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("config.toml"), config_text)
        .with_context(|| format!("writing {}", out.join("config.toml").display()))?;
    let mut log = MetricsLog::open(&out.join("metrics.csv"), args.resume, run.success_window)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let budget = Duration::from_secs_f64(args.minutes * 60.0);
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(budget.as_secs().max(1));
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan/blue}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let start = Instant::now();
    let mut last_iter = Duration::ZERO;
    let mut reached_90: Option<f64> = None;
    let mut iterations = 0usize;
    let algorithm = trainer.algorithm();
    while !stop.load(Ordering::SeqCst)
        && start.elapsed() + last_iter <= budget
        && (run.max_iterations == 0 || iterations < run.max_iterations)
    {
        let t0 = Instant::now();
        let m = trainer.iterate()?;
        last_iter = t0.elapsed();
        iterations += 1;
        let outcomes = episode_outcomes(&m);
        let sw = log.record(&m, start.elapsed().as_secs_f64(), &outcomes)?;
        if reached_90.is_none() && sw >= 0.9 && log.window.len() >= run.success_window / 2 {
            reached_90 = Some(start.elapsed().as_secs_f64());
        }
        bar.set_position(start.elapsed().as_secs().min(budget.as_secs()));
        bar.set_message(format!(
            "it {} steps {} success {:.2}",
            m.iteration, m.env_steps, sw
        ));
        if iterations.is_multiple_of(run.checkpoint_every) {
            trainer.save(out)?;
        }
    }
    bar.finish_and_clear();
    let train_s = start.elapsed().as_secs_f64();
    if stop.load(Ordering::SeqCst) {
        eprintln!("interrupted: saving what was trained");
    }
    trainer.save(out)?;
    log.file.flush()?;
    log.plot(&out.join("curve.png"), algorithm, env)?;
    output(&format!(
        "trained {algorithm} on {} ({}) for {:.1} min: {} environment steps; checkpoint, \
         config.toml, metrics.csv and curve.png in {}",
        env.task,
        env.hand,
        train_s / 60.0,
        trainer.env_steps(),
        out.display()
    ))?;
    output(&match reached_90 {
        Some(s) => format!(
            "time_to_90 {s:.1} s (training success over the last {} episodes)",
            run.success_window
        ),
        None => "time_to_90 never".into(),
    })?;
    let mut policy = trainer.current_policy()?;
    let eval_seed = seed.wrapping_add(1);
    let mut venv = env.build(run.eval_envs)?;
    let r = evaluate(
        policy.as_mut(),
        &mut venv,
        run.eval_episodes,
        eval_seed,
        ActMode::Deterministic,
    )?;
    eprintln!(
        "same figure: dex eval --checkpoint {} --episodes {} --seed {eval_seed} --envs {}",
        out.display(),
        run.eval_episodes,
        run.eval_envs
    );
    output(&format!(
        "episodes {} mean_return {:.3} mean_length {:.1}",
        r.episodes, r.mean_return, r.mean_length
    ))?;
    output(&format!("success {}", r.success_rate))
}

/// Success and return of the episodes that ended in an iteration, as the window needs
/// them (the metrics give counts and means; successes first is fine for a window).
fn episode_outcomes(m: &dex_policy::Metrics) -> Vec<(bool, f64)> {
    if m.episodes == 0 {
        return Vec::new();
    }
    let successes = (m.success_rate * m.episodes as f64).round() as usize;
    (0..m.episodes)
        .map(|k| (k < successes, m.mean_return))
        .collect()
}

/// Runs `dex eval`.
pub fn run_eval(a: EvalArgs) -> Result<()> {
    if a.episodes == 0 || a.envs == 0 {
        bail!("--episodes and --envs must be positive");
    }
    let mut ck = load_checkpoint(&a.checkpoint)?;
    let mut env = EnvSpec::from_table(&ck.env)?;
    if !a.sets.is_empty() {
        let base = EvalOverrides { task: env.config };
        env.config = load_config(base, None, &a.sets)?.task;
        env.config
            .validate()
            .context("the task settings after --set")?;
    }
    let mut venv = env.build(a.envs)?;
    let mode = if a.stochastic {
        ActMode::Stochastic
    } else {
        ActMode::Deterministic
    };
    let r = evaluate(ck.policy.as_mut(), &mut venv, a.episodes, a.seed, mode)?;
    output(&format!(
        "{} policy on {} ({}), trained {} environment steps{}",
        ck.algorithm,
        env.task,
        env.hand,
        ck.env_steps,
        if a.sets.is_empty() {
            String::new()
        } else {
            format!(", evaluated with {}", a.sets.join(" "))
        }
    ))?;
    output(&format!(
        "episodes {} mean_return {:.3} mean_length {:.1}",
        r.episodes, r.mean_return, r.mean_length
    ))?;
    output(&format!("success {}", r.success_rate))
}
