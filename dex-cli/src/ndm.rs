//! `dex ndm`: DexNDM's joint data collection and dynamics models.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dex_core::HandModel;
use dex_ndm::{
    DataWriter, Dataset, ModelKind, Phase, PolicyRollouts, RandomTargets, ReplayConfig,
    SequenceSource, TrainSettings, accuracy, load_model, replay, train_model,
};

use crate::stdout::output;

/// `dex ndm ...`.
#[derive(Debug, Subcommand)]
pub enum NdmCommand {
    /// Replay action sequences open-loop on a hand (over its port, or the ideal
    /// simulation with --sim), noise on half the steps; writes a `dex-ndm-data` set.
    Collect(CollectArgs),
    /// Fit a dynamics model (joint-wise, whole-hand or first-order) to a hand's data,
    /// pre-trained on simulated data when given.
    Train(TrainArgs),
    /// How far the gap hand (servo-driven, `dex hw emulate --actuator servo`) is from
    /// the ideal simulation on the same target sequences.
    Gap(GapArgs),
    /// The residual policy, trained through a frozen dynamics model.
    #[command(subcommand)]
    Residual(ResidualCommand),
    /// One-step joint-position error of a model on a dataset; ends with
    /// `rmse_rad <x> p95_rad <y>`.
    Eval(EvalArgs),
}

/// Arguments of `dex ndm collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The hand's serial port (or an emulator's pty).
    #[arg(long, required_unless_present_any = ["sim", "emulated"], conflicts_with_all = ["sim", "emulated"])]
    port: Option<String>,
    /// Bit rate of the port.
    #[arg(long, default_value_t = 4_000_000)]
    baud: u32,
    /// Collect in the ideal simulation (dex-sim's PD joints) instead of over a port.
    #[arg(long, conflicts_with = "emulated")]
    sim: bool,
    /// Collect from the gap hand (`dex hw emulate --actuator servo`) behind an emulated
    /// bus in this process, as fast as it simulates, instead of over a port.
    #[arg(long)]
    emulated: bool,
    /// With --emulated: a TOML file of gap settings (the default gap without it).
    #[arg(long, requires = "emulated")]
    gap: Option<PathBuf>,
    /// Built-in hand (`leap`).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Where the action sequences come from: a checkpoint of `dex train` (rolled out in
    /// ideal simulation) or `random` (smoothed random targets).
    #[arg(long, default_value = "random")]
    policy: String,
    /// Hand time to collect (minutes of control steps at --rate).
    #[arg(long)]
    minutes: f64,
    /// Seed of the sequences and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (must not hold a dataset yet).
    #[arg(long)]
    out: PathBuf,
    /// Control rate (Hz).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Steps per replayed sequence (DexNDM: 400, 20 s at 20 Hz).
    #[arg(long, default_value_t = 400)]
    sequence_steps: usize,
    /// With --sim or --emulated: the object on the palm (`cube`, `none`, any `dex sim`
    /// object) or `chaos-box` (a closed box of 40 light balls around the hand).
    #[arg(long, default_value = "none")]
    object: String,
    /// With --sim or --emulated: gravity in the world frame, `X,Y,Z` (m/s²); the palm
    /// faces up.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    gravity: Option<Vec<f64>>,
    /// Noise standard deviation (half joint ranges) and the fraction of steps it hits.
    #[arg(long, default_value_t = 0.01)]
    noise_std: f64,
    /// Fraction of steps with noise.
    #[arg(long, default_value_t = 0.5)]
    noise_fraction: f64,
}

/// `dex ndm residual ...`.
#[derive(Debug, Subcommand)]
pub enum ResidualCommand {
    /// Roll the base policy out in ideal simulation and train a residual on its targets
    /// so that the model's joints follow the simulated ones.
    Train(ResidualArgs),
}

/// Arguments of `dex ndm residual train`.
#[derive(Debug, Args)]
pub struct ResidualArgs {
    /// The base policy: a checkpoint of `dex train`.
    #[arg(long)]
    base: PathBuf,
    /// The hand's dynamics model (`dex ndm train`).
    #[arg(long)]
    model: PathBuf,
    /// Seed of the rollouts, the weights and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory: residual.toml and residual.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Base-policy episodes rolled out in simulation.
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Override one residual setting, e.g. `--set epochs=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// Arguments of `dex ndm gap`.
#[derive(Debug, Args)]
pub struct GapArgs {
    /// A TOML file of gap settings (the default gap without it).
    #[arg(long, conflicts_with = "no_gap")]
    gap: Option<PathBuf>,
    /// The servo model alone: no latency, friction, backlash, gain error or payload.
    #[arg(long)]
    no_gap: bool,
    /// The object on the palm (`none`, `cube`, ...) or `chaos-box`.
    #[arg(long, default_value = "none")]
    object: String,
    /// Gravity in the world frame, `X,Y,Z` (m/s²; the palm faces up).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    gravity: Option<Vec<f64>>,
    /// Hand time compared (minutes at --rate).
    #[arg(long, default_value_t = 0.5)]
    minutes: f64,
    /// Control rate (Hz).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seed of the random target sequences.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Arguments of `dex ndm train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The hand's data (a `dex-ndm-data` directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Simulated data to pre-train on first.
    #[arg(long)]
    pretrain: Option<PathBuf>,
    /// `joint` (DexNDM's), `whole` (one network for the hand) or `pd` (first-order lag).
    #[arg(long, default_value = "joint")]
    model: String,
    /// Seed of the hold-out split, the weights and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wall-clock cap on fitting (minutes; split evenly when pre-training); without it
    /// the configs' epochs are the budget.
    #[arg(long)]
    minutes: Option<f64>,
    /// Output directory: the model, config.toml, metrics.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A TOML config (see --print-config for every key and its default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set joint.hidden=[128,128]` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config and exit.
    #[arg(long)]
    print_config: bool,
}

/// Arguments of `dex ndm eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A model directory written by `dex ndm train`.
    #[arg(long)]
    model: PathBuf,
    /// The test data.
    #[arg(long)]
    data: PathBuf,
}

/// Runs `dex ndm ...`.
pub fn run(cmd: NdmCommand) -> Result<()> {
    match cmd {
        NdmCommand::Collect(a) => run_collect(a),
        NdmCommand::Gap(a) => run_gap(a),
        NdmCommand::Residual(ResidualCommand::Train(a)) => run_residual(a),
        NdmCommand::Train(a) => run_train(a),
        NdmCommand::Eval(a) => run_eval(a),
    }
}

fn run_collect(a: CollectArgs) -> Result<()> {
    if a.hand != "leap" {
        bail!("--hand `{}`: only `leap` has a driver", a.hand);
    }
    if !(a.minutes.is_finite() && a.minutes > 0.0 && a.rate.is_finite() && a.rate > 0.0) {
        bail!(
            "--minutes and --rate must be positive, got {} and {}",
            a.minutes,
            a.rate
        );
    }
    if a.sequence_steps == 0 {
        bail!("--sequence-steps must be at least 1");
    }
    let model = HandModel::leap_right();
    let limits = model.joint_limits();
    let mut source: Box<dyn SequenceSource> = if a.policy == "random" {
        Box::new(RandomTargets::new(limits.clone(), a.sequence_steps, a.seed))
    } else {
        let ck = dex_policy::load_checkpoint(std::path::Path::new(&a.policy))
            .with_context(|| format!("--policy {}", a.policy))?;
        let spec = dex_sim::EnvSpec::from_table(&ck.env)?;
        if spec.model()?.joint_names() != model.joint_names() {
            bail!(
                "--policy {}: trained on hand `{}`, not leap",
                a.policy,
                spec.hand
            );
        }
        let env = dex_sim::make_env(&spec.sim_task()?, spec.model()?, spec.config.clone())?;
        Box::new(PolicyRollouts::new(
            env,
            ck.policy,
            a.sequence_steps,
            a.seed,
        )?)
    };
    let mut meta = toml::Table::new();
    meta.insert("policy".into(), a.policy.clone().into());
    meta.insert("seed".into(), (a.seed as i64).into());
    meta.insert("noise_std".into(), a.noise_std.into());
    meta.insert("noise_fraction".into(), a.noise_fraction.into());
    let config = ReplayConfig {
        noise_std: a.noise_std,
        noise_fraction: a.noise_fraction,
        // Paced at the control rate over a port; the simulated hands step per command.
        rate_hz: if a.port.is_some() { a.rate } else { 0.0 },
        seed: a.seed,
        ..ReplayConfig::default()
    };
    let max_steps = (a.minutes * 60.0 * a.rate).round() as usize;
    let b = crate::progress::bar(
        max_steps as u64,
        "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} steps ({per_sec})",
    );
    let mut progress = |s: usize| b.set_position(s as u64);
    let gravity = crate::hw::parse_gravity(a.gravity.as_deref())?;
    meta.insert("object".into(), a.object.clone().into());
    if let Some(g) = gravity {
        meta.insert(
            "gravity".into(),
            toml::Value::Array(g.iter().map(|&v| v.into()).collect()),
        );
    }
    let mut driver: Box<dyn dex_hw::HandDriver> = if a.sim {
        let mut config_sim = dex_sim::SimConfig::for_hand(&model);
        let substeps = (1.0 / (a.rate * config_sim.dt)).round();
        if substeps < 1.0 {
            bail!("--rate {} is faster than the physics step", a.rate);
        }
        config_sim.substeps = substeps as usize;
        if let Some(g) = gravity {
            config_sim.gravity = g;
        }
        meta.insert("source".into(), "sim".into());
        Box::new(dex_hw::SimDriver::new(crate::hw::leap_sim_scene(
            &a.object, config_sim, None,
        )?)?)
    } else if a.emulated {
        let gap = crate::hw::read_gap(a.gap.as_deref())?;
        let steps = (1.0 / (a.rate * gap.physics_dt)).round();
        if steps < 1.0 {
            bail!("--rate {} is faster than the physics step", a.rate);
        }
        meta.insert(
            "source".into(),
            "gap hand (emulated bus, in process)".into(),
        );
        meta.insert(
            "gap".into(),
            toml::Value::try_from(&gap).context("the gap settings")?,
        );
        let (bus, _) = crate::hw::gap_scene_bus(
            &a.object,
            gravity,
            &gap,
            dex_hw::emulator::PhysicsClock::StepsPerGoalWrite(steps as usize),
        )?;
        let port = dex_hw::EmulatedPort::new(bus, 4_000_000);
        Box::new(dex_hw::LeapHand::open(port, dex_hw::LeapConfig::default())?)
    } else {
        let port = a.port.clone().unwrap_or_default();
        meta.insert("source".into(), format!("port {port}").into());
        let transport = dex_hw::SerialTransport::open(&port, a.baud)?;
        Box::new(dex_hw::LeapHand::open(
            transport,
            dex_hw::LeapConfig::default(),
        )?)
    };
    let mut writer = DataWriter::create(
        &a.out,
        model.name(),
        joint_names(&model),
        a.rate,
        config.chunk_rows,
        meta,
    )?;
    let report = replay(
        driver.as_mut(),
        &limits,
        source.as_mut(),
        max_steps,
        &config,
        &mut writer,
        &mut progress,
    )?;
    b.finish_and_clear();
    output(&format!(
        "{} steps in {} segments in {:.1} s ({:.1} steps/s); bus cycle p50 {:.2} ms p99 {:.2} ms; {} overruns of the {} Hz period; data in {}",
        report.steps,
        report.segments,
        report.seconds,
        report.achieved_hz,
        report.cycle_p50_ms,
        report.cycle_p99_ms,
        report.overruns,
        a.rate,
        a.out.display()
    ))
}

fn run_gap(a: GapArgs) -> Result<()> {
    if !(a.minutes.is_finite() && a.minutes > 0.0 && a.rate.is_finite() && a.rate > 0.0) {
        bail!(
            "--minutes and --rate must be positive, got {} and {}",
            a.minutes,
            a.rate
        );
    }
    let gap = if a.no_gap {
        dex_hw::emulator::GapConfig::zero()
    } else {
        crate::hw::read_gap(a.gap.as_deref())?
    };
    let gravity = crate::hw::parse_gravity(a.gravity.as_deref())?;
    let model = HandModel::leap_right();
    let mut ideal_config = dex_sim::SimConfig::for_hand(&model);
    let substeps = (1.0 / (a.rate * ideal_config.dt)).round();
    let gap_steps = (1.0 / (a.rate * gap.physics_dt)).round();
    if substeps < 1.0 || gap_steps < 1.0 {
        bail!("--rate {} is faster than the physics step", a.rate);
    }
    ideal_config.substeps = substeps as usize;
    if let Some(g) = gravity {
        ideal_config.gravity = g;
    }
    let mut ideal =
        dex_hw::SimDriver::new(crate::hw::leap_sim_scene(&a.object, ideal_config, None)?)?;
    let (bus, _) = crate::hw::gap_scene_bus(
        &a.object,
        gravity,
        &gap,
        dex_hw::emulator::PhysicsClock::StepsPerGoalWrite(gap_steps as usize),
    )?;
    let port = dex_hw::EmulatedPort::new(bus, 4_000_000);
    let mut real = dex_hw::LeapHand::open(port, dex_hw::LeapConfig::default())?;
    let limits = model.joint_limits();
    let mut source = RandomTargets::new(limits.clone(), 400, a.seed);
    let steps = (a.minutes * 60.0 * a.rate).round() as usize;
    let g = dex_ndm::tracking_gap(&mut ideal, &mut real, &limits, &mut source, steps)?;
    let names = model.joint_names();
    let worst = g
        .between_joint_rad
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map(|(i, v)| format!("{} {v:.4} rad", names[i]))
        .unwrap_or_default();
    output(&format!(
        "{} steps of random targets at {} Hz, object {}: ideal sim tracks them to {:.4} rad RMS, the gap hand to {:.4} rad; worst joint apart: {worst}",
        g.steps, a.rate, a.object, g.first_tracking_rad, g.second_tracking_rad
    ))?;
    output(&format!("gap_rad {:.4}", g.between_rad))
}

fn run_residual(a: ResidualArgs) -> Result<()> {
    let mut config: dex_ndm::ResidualConfig =
        dex_policy::run::layered_config(dex_ndm::ResidualConfig::default(), None, &a.sets)?;
    config.seed = a.seed;
    let model = load_model(&a.model)?;
    let ck = dex_policy::load_checkpoint(&a.base)
        .with_context(|| format!("--base {}", a.base.display()))?;
    let spec = dex_sim::EnvSpec::from_table(&ck.env)?;
    let hand = spec.model()?;
    if hand.dof() != model.dof() {
        bail!(
            "the base policy's hand has {} joints, the model {}",
            hand.dof(),
            model.dof()
        );
    }
    let units = dex_ndm::ActionUnits::for_task(&hand, &spec.config);
    let mut env = dex_sim::make_env(&spec.sim_task()?, hand, spec.config.clone())?;
    let mut policy = ck.policy;
    let steps = spec.config.episode_steps;
    let rollouts =
        dex_ndm::record_rollouts(env.as_mut(), policy.as_mut(), a.episodes, steps, a.seed)?;
    eprintln!(
        "{} rollout steps from {} episodes",
        rollouts.len(),
        a.episodes
    );
    let residual = dex_ndm::train_residual(
        model.as_ref(),
        &rollouts,
        units,
        &config,
        &mut |step, loss| {
            if step % 200 == 0 {
                eprintln!("step {step} loss {loss:.6}");
            }
        },
    )?;
    residual.save(&a.out)?;
    let r = residual
        .report()
        .cloned()
        .context("the residual has no training report")?;
    output(&format!(
        "{} steps in {:.1} s; the model's one-step error against the simulated joints: {:.4} rad with the base targets, {:.4} rad with the residual (corrections {:.4} rad RMS); residual in {}",
        r.steps,
        r.seconds,
        r.rmse_without_rad,
        r.rmse_with_rad,
        r.correction_rms_rad,
        a.out.display()
    ))
}

/// Where and how `dex eval` runs a policy over a bus.
pub(crate) struct BusEval<'a> {
    /// A serial port (paced in real time), or the in-process gap hand when `None`.
    pub(crate) port: Option<&'a str>,
    /// The gap of the in-process hand.
    pub(crate) gap: Option<&'a std::path::Path>,
    /// The in-process hand's joints: `servo` (the gap hand) or `pd` (ideal).
    pub(crate) actuator: &'a str,
    pub(crate) episodes: usize,
    pub(crate) seed: u64,
}

/// `dex eval --port|--emulated`: a reach or rotate policy on a hand over its bus.
pub(crate) fn eval_over_bus(
    spec: &dex_sim::EnvSpec,
    policy: &mut dyn dex_policy::Policy,
    over: &BusEval<'_>,
) -> Result<()> {
    if !(spec.task == "reach" || spec.task == "rotate") || spec.obs != "state" {
        bail!(
            "over a bus only `reach` and `rotate` with state observations run (their observations are measurable there); the checkpoint is `{}` ({})",
            spec.task,
            spec.obs
        );
    }
    let model = spec.model()?;
    if model.name() != HandModel::leap_right().name() {
        bail!(
            "over a bus only the LEAP Hand has a driver; the checkpoint is for `{}`",
            spec.hand
        );
    }
    if spec.task == "rotate" {
        return rotate_over_bus(spec, &model, policy, over);
    }
    let task = spec.config.clone();
    let rate = 1.0 / (task.dt * task.substeps as f64);
    // Goals and starts as the simulated task draws them, episode by episode.
    let params = dex_sim::ReachConfig::default();
    let mut sampler = dex_sim::FingertipReach::new(model.clone(), task.clone(), params)?;
    let mut episodes = Vec::with_capacity(over.episodes);
    for e in 0..over.episodes {
        use dex_sim::Env;
        sampler.reset(Some(over.seed + e as u64))?;
        let sim = sampler
            .simulator()
            .context("the reach task has no simulator")?;
        let hand_pose = sim.config().hand_pose;
        episodes.push(dex_ndm::ReachEpisode {
            goals: dex_ndm::goals_in_hand_frame(sampler.goals(), &hand_pose),
            start: sim.joint_state().q,
        });
    }
    let (mut driver, paced): (Box<dyn dex_hw::HandDriver>, f64) = match over.port {
        Some(port) => {
            let transport = dex_hw::SerialTransport::open(port, 4_000_000)?;
            (
                Box::new(dex_hw::LeapHand::open(
                    transport,
                    dex_hw::LeapConfig::default(),
                )?),
                rate,
            )
        }
        None => {
            let gap = crate::hw::read_gap(over.gap)?;
            let (bus, _) = crate::hw::emulated_bus("none", None, &gap, over.actuator, rate)?;
            let port = dex_hw::EmulatedPort::new(bus, 4_000_000);
            (
                Box::new(dex_hw::LeapHand::open(port, dex_hw::LeapConfig::default())?),
                0.0,
            )
        }
    };
    let r = dex_ndm::reach_over_driver(
        driver.as_mut(),
        &model,
        &task,
        policy,
        &episodes,
        params.success_radius,
        paced,
    )?;
    output(&format!(
        "reach over {} at {rate:.0} Hz: {} of {} episodes, final largest fingertip distance {:.1} mm on average",
        over.port.unwrap_or("the in-process gap hand"),
        r.successes,
        r.episodes,
        r.mean_final_distance * 1e3
    ))?;
    output(&format!("success {}", r.success_rate()))
}

/// `dex eval --task rotate --emulated`: the rotate policy on the in-process hand,
/// the object tracked and put back through the simulation behind the bus (a real hand
/// would need a tracker for it: `--port` is refused).
fn rotate_over_bus(
    spec: &dex_sim::EnvSpec,
    model: &HandModel,
    policy: &mut dyn dex_policy::Policy,
    over: &BusEval<'_>,
) -> Result<()> {
    if let Some(port) = over.port {
        bail!(
            "rotate over --port {port}: the rotation is measured on the object, which a bus does not report; run it on the in-process gap hand with --emulated (its simulation tracks the object)"
        );
    }
    let task = spec.config.clone();
    let rate = 1.0 / (task.dt * task.substeps as f64);
    let params = dex_sim::RotateConfig::default();
    // Object placements and starts as the simulated task draws them, episode by episode
    // (in the palm frame, carried over to the gap hand's world).
    let mut sampler = dex_sim::InHandRotation::new(model.clone(), task.clone(), params.clone())?;
    let mut draws = Vec::with_capacity(over.episodes);
    for e in 0..over.episodes {
        use dex_sim::Env;
        sampler.reset(Some(over.seed + e as u64))?;
        let sim = sampler
            .simulator()
            .context("the rotate task has no simulator")?;
        let palm = sim.config().hand_pose.inverse() * sim.object_state(0)?.pose;
        draws.push((palm, sim.joint_state().q));
    }
    let gap = crate::hw::read_gap(over.gap)?;
    let object = if params.object == dex_sim::ObjectSpec::named("cube")? {
        "cube"
    } else {
        bail!("the emulated hand's rotate scene has the 5 cm cube; the task's object differs");
    };
    let gravity = Some(task.rotate.palm.gravity());
    let (bus, mut scene) = crate::hw::emulated_bus(object, gravity, &gap, over.actuator, rate)?;
    let hand_pose = dex_ndm::ObjectScene::hand_pose(&scene)?;
    let episodes: Vec<dex_ndm::RotateEpisode> = draws
        .into_iter()
        .map(|(palm, start)| dex_ndm::RotateEpisode {
            object: hand_pose * palm,
            start,
        })
        .collect();
    let port = dex_hw::EmulatedPort::new(bus, 4_000_000);
    let mut driver = dex_hw::LeapHand::open(port, dex_hw::LeapConfig::default())?;
    let r = dex_ndm::rotate_over_driver(
        &mut driver,
        &mut scene,
        model,
        &task,
        &params.axis,
        policy,
        &episodes,
        0.0,
    )?;
    output(&format!(
        "rotate on the in-process {} hand at {rate:.0} Hz: {} episodes, {} drops",
        if over.actuator == "pd" {
            "ideal (PD)"
        } else {
            "gap"
        },
        r.episodes,
        r.drops
    ))?;
    output(&format!(
        "rotation_rad {:.4} ttf_s {:.3}",
        r.mean_rotation, r.mean_time_to_fall
    ))
}

fn joint_names(model: &HandModel) -> Vec<String> {
    model.joint_names().into_iter().map(String::from).collect()
}

fn run_train(a: TrainArgs) -> Result<()> {
    let mut settings: TrainSettings =
        dex_policy::run::layered_config(TrainSettings::default(), a.config.as_deref(), &a.sets)?;
    if let Some(m) = a.minutes {
        if !(m.is_finite() && m > 0.0) {
            bail!("--minutes must be positive, got {m}");
        }
        let share = if a.pretrain.is_some() { m / 2.0 } else { m };
        settings.fit.minutes = share;
        settings.pretrain.minutes = share;
    }
    let config_text = toml::to_string_pretty(&settings)?;
    if a.print_config {
        return output(&config_text);
    }
    let kind: ModelKind = a.model.parse()?;
    let (Some(data_dir), Some(out)) = (a.data.as_ref(), a.out.as_ref()) else {
        bail!("dex ndm train needs --data and --out");
    };
    let data = Dataset::load(data_dir)?;
    let pretrain = a.pretrain.as_deref().map(Dataset::load).transpose()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("config.toml"), &config_text)
        .with_context(|| format!("writing {}", out.join("config.toml").display()))?;
    let metrics_path = out.join("metrics.csv");
    let mut metrics = std::io::BufWriter::new(
        std::fs::File::create(&metrics_path)
            .with_context(|| format!("creating {}", metrics_path.display()))?,
    );
    writeln!(metrics, "phase,step,epoch,train_loss,valid_rmse_rad")?;
    let mut write_error = None;
    let (model, report) = train_model(
        &settings,
        kind,
        &data,
        pretrain.as_ref(),
        a.seed,
        &mut |p, e| {
            let valid = e.valid_rmse_rad.map_or(String::new(), |v| format!("{v}"));
            eprintln!(
                "{} step {} epoch {:.2} loss {:.5} held-out rmse {}",
                p.as_str(),
                e.step,
                e.epoch,
                e.train_loss,
                if valid.is_empty() { "-" } else { &valid }
            );
            if let Err(err) = writeln!(
                metrics,
                "{},{},{},{},{valid}",
                p.as_str(),
                e.step,
                e.epoch,
                e.train_loss
            ) {
                write_error.get_or_insert(err);
            }
        },
    )?;
    if let Some(err) = write_error {
        return Err(err).with_context(|| format!("writing {}", metrics_path.display()));
    }
    metrics.flush()?;
    model.save(out)?;
    let line = |phase: Phase, r: &dex_ndm::FitReport| {
        format!(
            "{}: {} steps, {:.2} epochs over {} samples in {:.1} s ({:.0} samples/s); held-out rmse {}",
            phase.as_str(),
            r.steps,
            r.epochs,
            r.samples,
            r.seconds,
            r.samples_per_s,
            r.valid_rmse_rad
                .map_or("-".to_string(), |v| format!("{v:.6} rad"))
        )
    };
    if let Some(r) = &report.pretrain {
        output(&line(Phase::Pretrain, r))?;
    }
    output(&line(Phase::Finetune, &report.finetune))?;
    output(&format!("{} model in {}", kind.as_str(), out.display()))
}

fn run_eval(a: EvalArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let data = Dataset::load(&a.data)?;
    let acc = accuracy(model.as_ref(), &data)?;
    let worst = acc
        .joint_rmse_rad
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map(|(i, v)| format!("{} ({v:.6} rad)", data.joint_names[i]))
        .unwrap_or_default();
    output(&format!(
        "{} model, {} samples; worst joint {worst}",
        model.kind().as_str(),
        acc.samples
    ))?;
    output(&acc.summary_line())
}
