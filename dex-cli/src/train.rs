//! `dex train` and `dex eval`: reinforcement learning on dex-sim tasks with dex-policy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dex_core::HandModel;
use dex_policy::run::{
    PpoRunConfig, RunEvent, RunReport, RunSettings, SacRunConfig, TrainingRun, layered_config,
    run_training,
};
use dex_policy::{ActMode, PpoTrainer, SacTrainer, Trainer, evaluate, load_checkpoint};
use dex_sim::{EnvSpec, TaskConfig};
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
    /// A periodic finger gait found by cross-entropy search (open loop; a base policy
    /// where RL does not find the motion in the time at hand); ends with `score <x>`.
    Gait(GaitArgs),
    /// Behaviour cloning: fit an MLP student to a dataset of (observation, action)
    /// rows (a dex dataset, e.g. converted from LeRobot by `dex.lerobot.to_dex`); when
    /// the dataset names its environment, the student is evaluated there.
    Bc(BcArgs),
}

/// Arguments of `dex train bc`.
#[derive(Debug, Args)]
pub struct BcArgs {
    /// A dex dataset directory (`dataset.toml` and `.npy` chunks).
    #[arg(long)]
    data: PathBuf,
    /// What the student sees: half-open ranges of the observation, e.g. `0..112`
    /// (default: all of it).
    #[arg(long)]
    keep: Option<String>,
    /// Seed of the student's initialisation, minibatch order and evaluation.
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory: student checkpoint and config.toml.
    #[arg(long)]
    out: PathBuf,
    /// A TOML config file (`[run]` for the evaluation, `[bc]` for the network and
    /// training; see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set bc.epochs=50` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config and exit.
    #[arg(long)]
    print_config: bool,
}

/// The config file of `dex train bc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BcFile {
    /// The evaluation (`eval_episodes`, `eval_envs`; the rest is unused).
    run: RunSettings,
    /// The student network and its training.
    bc: dex_policy::BcConfig,
}

fn run_bc(a: BcArgs) -> Result<()> {
    let mut file: BcFile = layered_config(BcFile::default(), a.config.as_deref(), &a.sets)?;
    if let Some(s) = a.seed {
        file.bc.seed = s;
    }
    if a.print_config {
        return output(&toml::to_string(&file)?);
    }
    file.run.validate()?;
    file.bc.validate()?;
    let data = dex_policy::Dataset::open(&a.data)
        .with_context(|| format!("opening the dataset {}", a.data.display()))?;
    let meta = data.meta().clone();
    let env = match meta.meta.get("env") {
        Some(toml::Value::Table(t)) => Some(
            EnvSpec::from_table(t)
                .with_context(|| format!("the environment named by {}", a.data.display()))?,
        ),
        Some(_) => bail!("{}: `env` in its meta is not a table", a.data.display()),
        None => None,
    };
    let keep = match &a.keep {
        Some(k) => parse_ranges(k)?,
        None => vec![[0, meta.observation_dim]],
    };
    if a.out.join(dex_policy::ppo::META_FILE).exists() {
        bail!(
            "{} already holds a checkpoint; choose another --out",
            a.out.display()
        );
    }
    let (x, y) = data.load_all()?;
    let start = Instant::now();
    let env_table = match &env {
        Some(e) => e.to_table()?,
        None => toml::Table::new(),
    };
    let student = dex_policy::StudentPolicy::new(
        &file.bc,
        meta.observation_dim,
        meta.action_dim,
        keep,
        env_table,
    )?;
    let mut trainer = dex_policy::BcTrainer::new(student)?;
    let loss = trainer.fit(x.view(), y.view())?;
    let mut student = trainer.into_student();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(a.out.join("config.toml"), toml::to_string(&file)?)?;
    student.save(&a.out)?;
    output(&format!(
        "student trained on {} rows for {} epochs in {:.1} s (loss {loss:.5}); checkpoint in {}",
        meta.rows(),
        file.bc.epochs,
        start.elapsed().as_secs_f64(),
        a.out.display()
    ))?;
    let Some(env) = env else {
        return output("the dataset names no environment (meta.env): not evaluated");
    };
    let mut venv = env.build(file.run.eval_envs)?;
    let r = evaluate(
        &mut student,
        &mut venv,
        file.run.eval_episodes,
        file.bc.seed.wrapping_add(1),
        ActMode::Deterministic,
    )?;
    output(&format!("student on {} ({})", env.task, env.hand))?;
    eval_lines(&env, &r)
}

/// Arguments of `dex train gait`.
#[derive(Debug, Args)]
pub struct GaitArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// The config file of `dex train gait`: the task's settings and the search's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct GaitRunConfig {
    /// The task's settings (absolute actions).
    task: TaskConfig,
    /// The search.
    gait: dex_policy::GaitSearchConfig,
}

/// The kind of student `dex train dagger` distils into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StudentKind {
    /// An MLP on the state ranges of `--keep`.
    Mlp,
    /// Dex4D's point-track transformer (tasks `anypose-table` and `anypose-proxy`).
    Dex4d,
}

/// Arguments of `dex train dagger`.
#[derive(Debug, Args)]
pub struct DaggerArgs {
    /// The teacher: a checkpoint directory written by `dex train` (its task and hand are
    /// used), `reach-ik` for the scripted inverse-kinematics expert on `reach`,
    /// `proxy-expert` for the analytic teacher of `anypose-proxy`, or `tabletop-expert`
    /// for the scripted grasp-and-carry teacher of `anypose-table`.
    #[arg(long)]
    teacher: String,
    /// Hand of a scripted teacher (`leap`, `allegro` or a URDF path).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// The student: `mlp` (sees `--keep`) or `dex4d` (Dex4D's point-track student;
    /// its network is `[student]` in the config, e.g. `--set student.attention=false`).
    #[arg(long, value_enum, default_value = "mlp")]
    student: StudentKind,
    /// The point encoding of a `dex4d` student: paired, decoupled or mlp.
    #[arg(long)]
    encoder: Option<String>,
    /// What an `mlp` student sees: half-open ranges of the state vector, e.g.
    /// `0..112,124..136` (LEAP reach: proprioception and targets, without fingertip
    /// positions).
    #[arg(long)]
    keep: Option<String>,
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
    /// A `dex4d` student's network.
    pub student: dex_policy::point_track::PointTrackConfig,
    /// A `dex4d` student's DAgger loop (Dex4D's: the student acts, a ring buffer).
    pub point_track: dex_policy::point_track::PointTrackDaggerConfig,
}

impl Default for DaggerFile {
    fn default() -> Self {
        Self {
            run: RunSettings::default(),
            num_envs: 32,
            dagger: dex_policy::DaggerConfig::default(),
            student: dex_policy::point_track::PointTrackConfig::default(),
            point_track: dex_policy::point_track::PointTrackDaggerConfig::default(),
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
    let mut file: DaggerFile = layered_config(DaggerFile::default(), a.config.as_deref(), &a.sets)?;
    match (a.student, &a.keep) {
        (StudentKind::Mlp, Some(keep)) => file.dagger.keep = parse_ranges(keep)?,
        (StudentKind::Mlp, None) => bail!("an mlp student needs --keep (the state ranges it sees)"),
        (StudentKind::Dex4d, Some(_)) => {
            bail!("a dex4d student reads its own inputs from the task; drop --keep")
        }
        (StudentKind::Dex4d, None) => {}
    }
    if let Some(e) = &a.encoder {
        if a.student != StudentKind::Dex4d {
            bail!("--encoder is for a dex4d student");
        }
        file.student.encoder = e.parse()?;
    }
    if let Some(s) = a.seed {
        file.dagger.seed = s;
        file.dagger.bc.seed = s;
        file.point_track.seed = s;
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
    let (mut teacher, env) = match scripted_teacher(&a.teacher, &a.hand)? {
        Some(scripted) => scripted,
        None => {
            let teacher = load_checkpoint(Path::new(&a.teacher))?;
            let env = EnvSpec::from_table(&teacher.env)?;
            (teacher, env)
        }
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
    if a.student == StudentKind::Dex4d {
        return run_point_track_dagger(
            &a,
            &file,
            teacher.policy.as_mut(),
            &env,
            &teacher_result,
            &eval,
        );
    }
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
    report_student(&teacher_result, &r)
}

/// The name of the shipped Dex4D student (`dex-cli/assets/dex4d-student`).
const BUILTIN_DEX4D_STUDENT: &str = "builtin:dex4d-student";

/// The shipped Dex4D student, written to a fresh temporary directory and loaded from
/// there.
fn load_builtin_dex4d_student() -> Result<dex_policy::LoadedCheckpoint> {
    const META: &str = include_str!("../assets/dex4d-student/checkpoint.toml");
    const WEIGHTS: &[u8] = include_bytes!("../assets/dex4d-student/policy.safetensors");
    let dir =
        std::env::temp_dir().join(format!("dex-builtin-dex4d-student-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(dex_policy::ppo::META_FILE), META)?;
    std::fs::write(dir.join(dex_policy::ppo::WEIGHTS_FILE), WEIGHTS)?;
    let loaded = load_checkpoint(&dir).context("loading the shipped dex4d student");
    std::fs::remove_dir_all(&dir).ok();
    loaded
}

/// The scripted teachers by name, with the task each acts on: `reach-ik` (inverse
/// kinematics on `reach`), `proxy-expert` (the analytic teacher of `anypose-proxy`) and
/// `tabletop-expert` (the grasp-and-carry teacher of `anypose-table`, 200-step
/// episodes; also `builtin:dex4d-teacher`). `None` for any other name.
pub(crate) fn scripted_teacher(
    name: &str,
    hand: &str,
) -> Result<Option<(dex_policy::LoadedCheckpoint, EnvSpec)>> {
    let spec = |task: &str, config: dex_sim::TaskConfig| EnvSpec {
        task: task.into(),
        hand: hand.into(),
        obs: "state".into(),
        config,
    };
    let model = || HandModel::load(hand).with_context(|| format!("loading hand `{hand}`"));
    let (algorithm, policy, env): (_, Box<dyn dex_policy::Policy>, _) = match name {
        "reach-ik" => {
            let env = spec("reach", dex_sim::TaskConfig::default());
            let expert = dex_policy::ReachIkExpert::new(model()?, env.config.history)?;
            ("reach-ik expert", Box::new(expert), env)
        }
        "proxy-expert" => {
            let env = spec("anypose-proxy", dex_sim::TaskConfig::default());
            let expert = dex_policy::PoseProxyExpert::new(&env.config.proxy);
            ("pose-proxy expert", Box::new(expert), env)
        }
        "tabletop-expert" | "builtin:dex4d-teacher" => {
            let env = spec(
                "anypose-table",
                dex_sim::TaskConfig {
                    episode_steps: 200,
                    ..dex_sim::TaskConfig::default()
                },
            );
            let expert = dex_policy::TabletopExpert::new(
                &model()?,
                &env.config,
                &dex_sim::AnyposeTableConfig::default(),
                dex_policy::TabletopExpertConfig::default(),
            )?;
            ("tabletop expert", Box::new(expert), env)
        }
        _ => return Ok(None),
    };
    let teacher = dex_policy::LoadedCheckpoint {
        algorithm,
        policy,
        env: env.to_table()?,
        env_steps: 0,
    };
    Ok(Some((teacher, env)))
}

/// The last lines of `dex train dagger`: the fraction of the teacher's success the
/// student recovered, then the student's success.
fn report_student(
    teacher: &dex_policy::EvalResult,
    student: &dex_policy::EvalResult,
) -> Result<()> {
    output(&format!(
        "recovered {:.3} of the teacher's success",
        if teacher.success_rate > 0.0 {
            student.success_rate / teacher.success_rate
        } else {
            f64::NAN
        }
    ))?;
    output(&format!("success {}", student.success_rate))
}

/// Where a Dex4D student reads its inputs in `env`'s observation.
fn point_track_inputs(env: &EnvSpec) -> Result<dex_policy::point_track::PointTrackInputs> {
    use dex_policy::point_track::PointTrackInputs;
    match env.task.as_str() {
        "anypose-proxy" => Ok(PointTrackInputs::proxy(&dex_sim::ProxyLayout::new(
            env.config.proxy.slots,
        ))),
        "anypose-table" => {
            let model = HandModel::load(&env.hand)
                .with_context(|| format!("loading hand `{}`", env.hand))?;
            let task = dex_sim::AnyposeTabletop::new(
                model,
                env.config.clone(),
                dex_sim::AnyposeTableConfig::default(),
            )?;
            Ok(PointTrackInputs::anypose_table(task.layout()))
        }
        other => bail!(
            "a dex4d student needs object point tracks in the observation: task \
             anypose-table or anypose-proxy, not {other}"
        ),
    }
}

/// `dex train dagger --student dex4d`: Dex4D's DAgger loop into a point-track student.
fn run_point_track_dagger(
    a: &DaggerArgs,
    file: &DaggerFile,
    teacher: &mut dyn dex_policy::Policy,
    env: &EnvSpec,
    teacher_result: &dex_policy::EvalResult,
    eval: &dyn Fn(&mut dyn dex_policy::Policy) -> Result<dex_policy::EvalResult>,
) -> Result<()> {
    use dex_policy::point_track::{PointTrackDagger, PointTrackPolicy};
    let inputs = point_track_inputs(env)?;
    let venv = env.build(file.num_envs)?;
    let dim = venv.observation_spec().state.dim();
    let actions = venv.action_space().dim();
    let seed = file.point_track.seed;
    let student =
        PointTrackPolicy::new(&file.student, inputs, dim, actions, seed, env.to_table()?)?;
    let mut dagger = PointTrackDagger::new(student, venv, file.point_track.clone(), seed)?;
    let mut csv = std::fs::File::create(a.out.join("metrics.csv"))?;
    writeln!(
        csv,
        "iteration,wall_s,env_steps,episodes,successes,bc_loss,world_model_loss"
    )?;
    let start = Instant::now();
    let budget = Duration::from_secs_f64(a.minutes * 60.0);
    let bar = crate::progress::bar(
        budget.as_secs().max(1),
        "{elapsed_precise} [{bar:30.cyan/blue}] {msg}",
    );
    while start.elapsed() < budget {
        let it = dagger.iterate(teacher)?;
        writeln!(
            csv,
            "{},{:.3},{},{},{},{},{}",
            it.iteration,
            start.elapsed().as_secs_f64(),
            it.env_steps,
            it.episodes,
            it.successes,
            it.bc_loss,
            it.world_model_loss
        )?;
        bar.set_position(start.elapsed().as_secs());
        bar.set_message(format!(
            "iteration {} bc {:.4} world model {:.4}",
            it.iteration, it.bc_loss, it.world_model_loss
        ));
    }
    bar.finish_and_clear();
    let mut student = dagger.into_student();
    student.save(&a.out)?;
    // The teacher's episodes, so the recovered fraction compares like with like.
    let r = eval(&mut student)?;
    output(&format!(
        "student trained on {} env steps in {:.1} min; checkpoint, config.toml and metrics.csv in {}",
        student.meta().env_steps,
        start.elapsed().as_secs_f64() / 60.0,
        a.out.display()
    ))?;
    report_student(teacher_result, &r)
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
    /// A checkpoint directory written by `dex train`, `builtin:dex4d-student` (the
    /// shipped Dex4D student on `anypose-table`), or a scripted teacher by name
    /// (`reach-ik`, `proxy-expert`, `tabletop-expert` = `builtin:dex4d-teacher`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Hand of a scripted teacher (`leap`, `allegro` or a URDF path).
    #[arg(long, default_value = "leap")]
    hand: String,
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
    /// The task the checkpoint should be for (`reach`, ...; `anypose` accepts either
    /// anypose task): an error if it is not. `carry`, `pour` and `stack` run Dex4D's
    /// multi-waypoint tasks on an `anypose-table` policy, driven by goal point tracks
    /// (`--tracks`); their last line is `success <fraction> progress <fraction>`.
    #[arg(long)]
    task: Option<String>,
    /// Multi-waypoint tasks: where the current object points come from (`oracle`: the
    /// simulator; `klt`: KLT on rendered grey + depth with a rigid fit; `open-loop`:
    /// no tracking of the goal, the waypoints replayed in time).
    #[arg(long, value_enum, default_value = "oracle")]
    tracks: crate::tracks::TrackSource,
    /// Multi-waypoint tasks: how the goal follower hands over a waypoint (`absolute`:
    /// the plan's points; `relative`: the current points moved by the plan's step).
    #[arg(long, value_enum, default_value = "absolute")]
    correction: crate::tracks::Correction,
    /// Multi-waypoint tasks: control steps per episode.
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Multi-waypoint tasks with `--tracks open-loop`: steps spent on each waypoint.
    #[arg(long, default_value_t = 80)]
    open_loop_steps: usize,
    /// Multi-waypoint tasks: a waypoint is reached when the mean distance of the
    /// object's points to it is at most this (m).
    #[arg(long, default_value_t = 0.03)]
    advance_distance: f64,
    /// Multi-waypoint tasks with `--tracks klt`: the tracking camera's image width
    /// (height ¾ of it).
    #[arg(long, default_value_t = 320)]
    image_width: usize,
    /// Multi-waypoint tasks with `--tracks klt`: cameras around the table, each tracked
    /// on its own; the step's pose comes from the one that kept the most tracks.
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Add a residual (`dex ndm residual train`) to the policy's actions.
    #[arg(long)]
    residual: Option<PathBuf>,
    /// Run on a hand over this serial port (or an emulator's pty) at the task's control
    /// rate instead of in simulation (`reach`; `rotate` needs --emulated); goals and starts are drawn by the
    /// simulated task with the same seeds.
    #[arg(long, conflicts_with = "emulated")]
    port: Option<String>,
    /// Run on the gap hand behind an in-process emulated bus (as `--port`, without real
    /// time).
    #[arg(long)]
    emulated: bool,
    /// With --emulated: a TOML file of gap settings (the default gap without it).
    #[arg(long, requires = "emulated")]
    gap: Option<PathBuf>,
    /// With --emulated: the joints behind the bus, `servo` (the gap hand: each XC330's
    /// control law and the gap) or `pd` (the ideal simulated joints: the same bus and
    /// driver path without the gap).
    #[arg(long, requires = "emulated", default_value = "servo")]
    actuator: String,
    /// Also record one episode (environment 0's first: same start, same actions) for
    /// the rerun viewer (0.35) in this `.rrd` file: links, objects, an overview camera's
    /// grey images, joint targets against measured angles (needs dex built with the
    /// `rerun` feature; simulated evaluations only).
    #[arg(long, value_name = "FILE.rrd", conflicts_with_all = ["port", "emulated"])]
    rerun: Option<PathBuf>,
}

/// The last lines of an evaluation: episodes, return and length, then `success
/// <fraction>`; for `anypose-table` the mean goals completed per episode; for the rotate task DexNDM's figures after it, rotation about the axis
/// and time to fall (the episode's length when the object stays).
/// Runs a multi-waypoint evaluation and prints its lines, the last `success <f>
/// progress <f>`.
fn track_eval_lines(
    mut ck: dex_policy::LoadedCheckpoint,
    env: &EnvSpec,
    eval: &crate::tracks::TrackEval,
) -> Result<()> {
    let start = Instant::now();
    let r = crate::tracks::evaluate_tracks(ck.policy.as_mut(), env, eval)?;
    output(&format!(
        "{} policy on {} ({}) via {:?} tracks, {:?} goals, {} episodes of up to {} steps, \
         waypoint within {} m",
        ck.algorithm,
        eval.task.name(),
        env.hand,
        eval.source,
        eval.correction,
        eval.episodes,
        eval.steps,
        eval.advance_distance
    ))?;
    let mut timing = format!(
        "mean_steps {:.1} wall_s {:.1}",
        r.mean_steps,
        start.elapsed().as_secs_f64()
    );
    if let Some(e) = r.plan_error {
        timing.push_str(&format!(" end_off_plan_mm {:.1}", e * 1e3));
    }
    if let (Some(render), Some(track), Some(err)) = (r.render_ms, r.track_ms, r.track_error) {
        timing.push_str(&format!(
            " render_ms {render:.2} track_ms {track:.2} track_error_mm {:.1}",
            err * 1e3
        ));
    }
    output(&timing)?;
    // Fractions to 4 decimals (a mean of thirds would print 16 digits).
    let round = |x: f64| (x * 1e4).round() / 1e4;
    output(&format!(
        "success {} progress {}",
        round(r.success),
        round(r.progress)
    ))
}

fn eval_lines(env: &dex_sim::EnvSpec, r: &dex_policy::EvalResult) -> Result<()> {
    output(&format!(
        "episodes {} mean_return {:.3} mean_length {:.1}",
        r.episodes, r.mean_return, r.mean_length
    ))?;
    output(&format!("success {}", r.success_rate))?;
    if env.task == "anypose-table" {
        output(&format!(
            "goals_per_episode {:.3}",
            r.final_info.get("goals").copied().unwrap_or(0.0)
        ))?;
    }
    if env.task == "rotate" {
        let period = env.config.dt * env.config.substeps as f64;
        output(&format!(
            "rotation_rad {:.4} ttf_s {:.3}",
            r.final_info.get("rotation").copied().unwrap_or(0.0),
            r.mean_length * period
        ))?;
    }
    Ok(())
}

fn run_gait(a: GaitArgs) -> Result<()> {
    let a = a.common;
    let file: GaitRunConfig =
        layered_config(GaitRunConfig::default(), a.config.as_deref(), &a.sets)?;
    let text = toml::to_string(&file)?;
    if a.print_config {
        return output(&text);
    }
    if a.resume {
        bail!("a gait search does not resume");
    }
    let out = a.out.context("--out is needed")?;
    let spec = dex_sim::EnvSpec::state(&a.task, &a.hand, file.task.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("config.toml"), &text)?;
    let metrics_path = out.join("metrics.csv");
    let mut metrics = std::io::BufWriter::new(std::fs::File::create(&metrics_path)?);
    writeln!(metrics, "iteration,wall_s,env_steps,best,elite_mean,mean")?;
    let began = std::time::Instant::now();
    let mut write_error = None;
    let policy = dex_policy::search_gait(
        &spec,
        &file.gait,
        a.minutes,
        a.seed.unwrap_or(0),
        &mut |it| {
            eprintln!(
                "iteration {} ({} steps): best {:.3} elites {:.3} mean {:.3}",
                it.iteration, it.env_steps, it.best, it.elite_mean, it.mean
            );
            if let Err(e) = writeln!(
                metrics,
                "{},{:.3},{},{},{},{}",
                it.iteration,
                began.elapsed().as_secs_f64(),
                it.env_steps,
                it.best,
                it.elite_mean,
                it.mean
            ) {
                write_error.get_or_insert(e);
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e).context("writing metrics.csv");
    }
    metrics.flush()?;
    policy.save(&out)?;
    output(&format!(
        "gait on {} ({}) found in {:.1} min, {} environment steps; checkpoint in {}",
        a.task,
        a.hand,
        began.elapsed().as_secs_f64() / 60.0,
        policy.meta().env_steps,
        out.display()
    ))?;
    output(&format!(
        "same figure: dex eval --checkpoint {} --episodes 24 --seed 1",
        out.display()
    ))?;
    output(&format!("score {:.4}", policy.meta().score))
}

/// The part of a training config `dex eval --set` may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalOverrides {
    /// The task's settings.
    task: TaskConfig,
}

/// Runs `dex train ...`.
pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Dagger(a) => run_dagger(a),
        TrainCommand::Gait(a) => run_gait(a),
        TrainCommand::Bc(a) => run_bc(a),
        TrainCommand::Ppo(a) => {
            let mut file: PpoRunConfig = layered_config(
                PpoRunConfig::for_task(&a.common.task),
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
            let mut file: SacRunConfig = layered_config(
                SacRunConfig::for_task(&a.common.task, a.obs == ObsKind::Depth),
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

/// The success and return curve of a run, as `curve.png`.
fn plot_curve(path: &Path, report: &RunReport, window_len: usize, env: &EnvSpec) -> Result<()> {
    let series = |f: &dyn Fn(&(f64, f64, f64)) -> f64| Series {
        name: String::new(),
        points: report.curve.iter().map(|p| (p.0, f(p))).collect(),
    };
    let panels = [
        Panel {
            title: format!(
                "{} on {} ({}): success, last {window_len} episodes",
                report.algorithm, env.task, env.hand
            ),
            x_label: "wall-clock minutes".into(),
            y_label: "success".into(),
            series: vec![series(&|p| p.1)],
        },
        Panel {
            title: "episode return (same window)".into(),
            x_label: "wall-clock minutes".into(),
            y_label: "return".into(),
            series: vec![series(&|p| p.2)],
        },
    ];
    write_png(path, &panels, 800, 320)
}

fn train_loop(
    mut trainer: Box<dyn Trainer>,
    args: &CommonArgs,
    settings: &RunSettings,
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
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let budget = Duration::from_secs_f64(args.minutes * 60.0);
    let bar = crate::progress::bar(
        budget.as_secs().max(1),
        "{elapsed_precise} [{bar:30.cyan/blue}] {msg}",
    );
    let run = TrainingRun {
        out,
        settings,
        env,
        seed,
        budget,
        resume: args.resume,
        config_text,
    };
    let report = run_training(trainer.as_mut(), &run, &stop, &mut |event| match event {
        RunEvent::Resumed { env_steps } => {
            eprintln!(
                "resumed from {} at {env_steps} environment steps",
                out.display()
            );
        }
        RunEvent::Iteration {
            metrics,
            success_window,
            elapsed,
        } => {
            bar.set_position(elapsed.as_secs().min(budget.as_secs()));
            bar.set_message(format!(
                "it {} steps {} success {:.2}",
                metrics.iteration, metrics.env_steps, success_window
            ));
        }
    })?;
    bar.finish_and_clear();
    if report.interrupted {
        eprintln!("interrupted: saved what was trained");
    }
    plot_curve(
        &out.join("curve.png"),
        &report,
        settings.success_window,
        env,
    )?;
    output(&format!(
        "trained {} on {} ({}) for {:.1} min: {} environment steps; checkpoint, \
         config.toml, metrics.csv and curve.png in {}",
        report.algorithm,
        env.task,
        env.hand,
        report.train_s / 60.0,
        report.env_steps,
        out.display()
    ))?;
    output(&match report.time_to_90 {
        Some(s) => format!(
            "time_to_90 {s:.1} s (training success over the last {} episodes)",
            settings.success_window
        ),
        None => "time_to_90 never".into(),
    })?;
    eprintln!(
        "same figure: dex eval --checkpoint {} --episodes {} --seed {} --envs {}",
        out.display(),
        settings.eval_episodes,
        report.eval_seed,
        settings.eval_envs
    );
    let r = &report.eval;
    eval_lines(env, r)
}

/// Runs `dex eval`.
pub fn run_eval(a: EvalArgs) -> Result<()> {
    if a.episodes == 0 || a.envs == 0 {
        bail!("--episodes and --envs must be positive");
    }
    if let Some(path) = &a.rerun {
        crate::record::check(path)?;
    }
    let (mut ck, mut env) = match a
        .checkpoint
        .to_str()
        .map(|name| scripted_teacher(name, &a.hand))
        .transpose()?
        .flatten()
    {
        Some(scripted) => scripted,
        None => {
            let ck = if a.checkpoint == Path::new(BUILTIN_DEX4D_STUDENT) {
                load_builtin_dex4d_student()?
            } else {
                load_checkpoint(&a.checkpoint)?
            };
            let env = EnvSpec::from_table(&ck.env)?;
            (ck, env)
        }
    };
    if let Some(name) = &a.task
        && let Ok(task) = dex_sim::TableTask::from_name(name)
    {
        let eval = crate::tracks::TrackEval {
            task,
            source: a.tracks,
            correction: a.correction,
            episodes: a.episodes,
            seed: a.seed,
            steps: a.steps,
            open_loop_steps: a.open_loop_steps,
            advance_distance: a.advance_distance,
            image_width: a.image_width,
            cameras: a.cameras,
        };
        return track_eval_lines(ck, &env, &eval);
    }
    if let Some(task) = &a.task
        && task != &env.task
        && !(task == "anypose" && env.task == "anypose-table")
    {
        bail!("--task {task}: the checkpoint is for `{}`", env.task);
    }
    if let Some(dir) = &a.residual {
        let residual = dex_ndm::ResidualPolicy::load(dir)?;
        ck.policy = Box::new(dex_policy::Residual::new(ck.policy, residual, 1.0)?);
    }
    if a.port.is_some() || a.emulated {
        let over = crate::ndm::BusEval {
            port: a.port.as_deref(),
            gap: a.gap.as_deref(),
            actuator: &a.actuator,
            episodes: a.episodes,
            seed: a.seed,
        };
        return crate::ndm::eval_over_bus(&env, ck.policy.as_mut(), &over);
    }
    if !a.sets.is_empty() {
        let base = EvalOverrides { task: env.config };
        env.config = layered_config(base, None, &a.sets)?.task;
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
    if let Some(path) = &a.rerun {
        let (steps, ret) =
            crate::record::record_episode(&env, ck.policy.as_mut(), a.seed, mode, path)?;
        eprintln!(
            "rerun {}: one episode, {steps} steps, return {ret:.3}",
            path.display()
        );
    }
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
    eval_lines(&env, &r)
}
