//! `dex demo`: the whole stack in one command.
//!
//! A simulated LEAP Hand (dex-sim) stands in for the real one behind an emulated
//! servo bus on a pseudo-terminal (dex-hw's `SimJoints`); the LEAP driver, wrapped
//! in its safety layer, runs the control loop over that terminal; a policy from
//! dex-policy reaches fingertip targets, then a scripted grasp closes on a cube and
//! holds it while gravity tilts; a camera renders the scene and the KLT tracker from
//! dex-track follows points on the cube, lifted to 3D, with the cube's pose by
//! Kabsch. Everything is compared with the simulator's ground truth.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use dex_core::{HandModel, JointLimits, JointTargets};
use dex_hw::emulator::{PhysicsClock, PtyEmulator, SimJoints};
use dex_hw::{
    HandDriver, LeapConfig, LeapHand, LimitPolicy, SafetyConfig, SafetyLimits, SerialTransport,
    ServoBus,
};
use dex_policy::{ActMode, Policy};
use dex_sim::{
    Env, FingertipReach, Proprioception, ReachConfig, SimState, Simulator, TaskConfig, reach_state,
};
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use ndarray::Array2;
use rand::SeedableRng;
use serde::Serialize;

use crate::demo_track::{TrackSummary, Tracking, TrackingFrame};
use crate::plot::{Panel, Series, write_png};
use crate::stdout::output;

/// The student policy the project ships, made by the command in `assets/README.md`.
const SHIPPED_META: &str = include_str!("../assets/reach-student/checkpoint.toml");
const SHIPPED_WEIGHTS: &[u8] = include_bytes!("../assets/reach-student/policy.safetensors");

/// Arguments of `dex demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the policy training, the reach targets and the tracker's queries.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory: figure, summary.json, the trained policy.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Train a student in the run (DAgger from the inverse-kinematics expert, a fixed
    /// number of iterations) instead of running the shipped one.
    #[arg(long)]
    train: bool,
    /// A 30-second version: 2 target sets, a shorter grasp (and with --train, 2 DAgger
    /// iterations).
    #[arg(long)]
    quick: bool,
    /// The hand (only `leap`: the demo drives its servo bus).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// A reach checkpoint written by `dex train` (dagger, ppo or sac from state) to run
    /// instead of the shipped student, with the task settings it was trained with.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Largest target change per control tick the safety layer lets through (rad;
    /// larger steps are shortened and counted). The policies here are trained without
    /// a rate limit: 0.35 (7 rad/s, under the XC330's 8.5 rad/s no-load speed) costs
    /// the shipped student more than half its reaches.
    #[arg(long, default_value_t = 1.0)]
    max_step: f64,
}

/// How long each part runs, in control ticks. The control rate is the reach task's
/// (20 Hz: 25 physics steps of 2 ms), so the policy runs at the rate it was trained
/// at; the LEAP Hand's own software runs at about 30 Hz, and the bus at 4 Mbit/s
/// allows several hundred cycles per second (`dex hw bench`).
#[derive(Debug, Clone, Copy, Serialize)]
struct Plan {
    train_iterations: usize,
    reach_sets: usize,
    reach_ticks: usize,
    return_ticks: usize,
    settle_ticks: usize,
    close_ticks: usize,
    hold_ticks: usize,
    tilt_ticks: usize,
    tilted_ticks: usize,
    tilt_deg: f64,
    track_every: usize,
    image_width: usize,
    image_height: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                train_iterations: 2,
                reach_sets: 2,
                reach_ticks: 60,
                return_ticks: 20,
                settle_ticks: 10,
                close_ticks: 16,
                hold_ticks: 6,
                tilt_ticks: 30,
                tilted_ticks: 20,
                tilt_deg: 60.0,
                track_every: 2,
                image_width: 640,
                image_height: 480,
            }
        } else {
            Self {
                train_iterations: 10,
                reach_sets: 10,
                reach_ticks: 60,
                return_ticks: 20,
                settle_ticks: 10,
                close_ticks: 20,
                hold_ticks: 10,
                tilt_ticks: 60,
                tilted_ticks: 40,
                tilt_deg: 60.0,
                track_every: 2,
                image_width: 640,
                image_height: 480,
            }
        }
    }
}

/// A fingertip has arrived within this distance (m), as in the reach task.
const REACH_RADIUS: f64 = 0.02;

/// What happens in one span of ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The policy reaches target set `i`.
    Reach(usize),
    /// Back to the open hand.
    Return,
    /// The cube is dropped on the palm and settles.
    Settle,
    /// The fingers close on it.
    Close,
    /// The grasp holds, palm up.
    Hold,
    /// Gravity tilts about the world x axis (the palm turning).
    Tilt,
    /// The grasp holds, tilted.
    Tilted,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Reach(_) => "reach",
            Phase::Return => "return",
            Phase::Settle => "settle",
            Phase::Close => "close",
            Phase::Hold => "hold",
            Phase::Tilt => "tilt",
            Phase::Tilted => "tilted",
        }
    }
}

/// `(phase, first tick, ticks)` for the whole run.
fn timeline(plan: &Plan) -> Vec<(Phase, usize, usize)> {
    let mut spans = Vec::new();
    let mut t = 0;
    let mut push = |phase, len: usize| {
        spans.push((phase, t, len));
        t += len;
    };
    for i in 0..plan.reach_sets {
        push(Phase::Reach(i), plan.reach_ticks);
        push(Phase::Return, plan.return_ticks);
    }
    push(Phase::Settle, plan.settle_ticks);
    push(Phase::Close, plan.close_ticks);
    push(Phase::Hold, plan.hold_ticks);
    push(Phase::Tilt, plan.tilt_ticks);
    push(Phase::Tilted, plan.tilted_ticks);
    spans
}

/// One control tick as logged.
#[derive(Debug, Clone)]
struct TickLog {
    t: f64,
    q: Vec<f64>,
    target: Vec<f64>,
    /// Height of the cube's centre over where it rested on the palm (mm, world z).
    object_height_mm: f64,
    /// Cube displacement in the palm frame since the grasp closed (mm).
    slip_mm: f64,
    tilt_deg: f64,
    phase: &'static str,
}

/// What one reach target set gave.
#[derive(Debug, Clone, Serialize)]
struct ReachOutcome {
    /// Seconds until every fingertip was within 2 cm, if it happened.
    time_to_reach_s: Option<f64>,
    /// Largest fingertip distance at the end of the span (mm).
    final_max_distance_mm: f64,
}

/// The demo's result, written to `summary.json`.
#[derive(Debug, Clone, Serialize)]
struct Summary {
    seed: u64,
    quick: bool,
    interrupted: bool,
    policy: PolicySummary,
    control: ControlSummary,
    safety: SafetySummary,
    reach: ReachSummary,
    grasp: GraspSummary,
    tracking: TrackSummary,
    /// Seconds per stage (these vary from run to run).
    timing: Timing,
    plan: Plan,
}

#[derive(Debug, Clone, Serialize)]
struct PolicySummary {
    source: String,
    /// The task settings the policy was trained with (from its checkpoint): the demo
    /// builds its observations and maps its actions with these.
    task: TaskConfig,
    /// Rows the student learnt from.
    rows: u64,
    /// Its success on the reach task in simulation (25 episodes), when trained here.
    sim_success: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct ControlSummary {
    rate_hz: f64,
    cycles: usize,
    bus_instructions: u64,
    bus_crc_errors: u64,
    physics_steps: u64,
}

#[derive(Debug, Clone, Serialize)]
struct SafetySummary {
    rejected: u64,
    clamped: u64,
    step_limited: u64,
    max_step_rad: f64,
}

#[derive(Debug, Clone, Serialize)]
struct ReachSummary {
    sets: usize,
    reached: usize,
    success: f64,
    /// The same target sets reached by the same policy in simulation, without the bus.
    reached_in_sim: usize,
    outcomes: Vec<ReachOutcome>,
}

#[derive(Debug, Clone, Serialize)]
struct GraspSummary {
    /// The cube stayed in the hand through the tilt.
    held: bool,
    tilt_deg: f64,
    /// Cube height over where it rested on the palm (mm): before closing, closed, at
    /// the end.
    height_before_mm: Option<f64>,
    height_closed_mm: Option<f64>,
    height_end_mm: Option<f64>,
    /// How far the cube moved in the palm frame from closed to the end (mm).
    slip_mm: Option<f64>,
}

/// Everything that depends on the wall clock (differs from run to run).
#[derive(Debug, Clone, Default, Serialize)]
struct Timing {
    achieved_hz: f64,
    jitter_p50_us: f64,
    jitter_p99_us: f64,
    jitter_max_us: f64,
    overruns: usize,
    cycle_work_p50_us: f64,
    cycle_work_p99_us: f64,
    tracking_ms_per_frame: f64,
    train_s: f64,
    bring_up_s: f64,
    control_loop_s: f64,
    tracking_s: f64,
    report_s: f64,
    total_s: f64,
}

/// Runs `dex demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    let total = Instant::now();
    match args.hand.as_str() {
        "leap" | "leap_right" => {}
        other => bail!(
            "--hand `{other}`: the demo drives a servo bus, and only the LEAP Hand (`leap`) has one"
        ),
    }
    if args.checkpoint.is_some() && args.train {
        bail!(
            "--checkpoint and --train exclude each other (run a checkpoint, or train one in the run)"
        );
    }
    if !(args.max_step.is_finite() && args.max_step > 0.0) {
        bail!("--max-step must be positive, got {}", args.max_step);
    }
    prepare_out(&args.out)?;
    let plan = Plan::new(args.quick);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let mut timing = Timing::default();

    // 1. The policy.
    let t0 = Instant::now();
    let (mut policy, policy_summary) = if args.train {
        train_policy(&args, &plan, &stop)?
    } else {
        load_policy(&args)?
    };
    timing.train_s = t0.elapsed().as_secs_f64();
    let model = HandModel::leap_right();
    let task = policy_summary.task.clone();
    let proprio = Proprioception::new(&model, task.history)?;
    let want = proprio.dim() + 9 * model.fingertips().len();
    if policy.observation_dim() != want || policy.action_dim() != model.dof() {
        bail!(
            "the policy takes {} values and gives {}; the LEAP reach task has {want} and {}",
            policy.observation_dim(),
            policy.action_dim(),
            model.dof()
        );
    }

    let sim_reached = reach_in_sim(policy.as_mut(), &model, &task, args.seed, plan.reach_sets)?;

    // 2. The hand: a simulation behind a servo bus on a pseudo-terminal.
    let t0 = Instant::now();
    let sim_config = task.sim_config(&model);
    let rate_hz = 1.0 / sim_config.control_period();
    let scene = crate::hw::leap_sim_scene("cube", sim_config.clone())?;
    let hand_pose = scene.config().hand_pose;
    let joints = SimJoints::new(scene);
    let sim = joints.handle();
    // Park the cube below the hand until the grasp.
    park_cube(&sim, &hand_pose)?;
    let bus = ServoBus::leap_hand_with_physics(Box::new(joints), PhysicsClock::PerGoalWrite)?;
    let mut emulator = PtyEmulator::start(bus)?;
    let port = SerialTransport::open(emulator.path(), 4_000_000)?;
    let mut leap = LeapHand::open(port, LeapConfig::default())?;
    // The emulated servos answer the first read after a goal write only once the
    // physics period it started is simulated: on a busy machine that can take longer
    // than a real bus's 20 ms reply timeout.
    leap.bus_mut()
        .set_timeout(std::time::Duration::from_millis(500));
    let mut safety = SafetyConfig::from_model(&model, Some(args.max_step));
    safety.policy = LimitPolicy::Clamp;
    let mut hand = SafetyLimits::new(leap, safety)?;
    hand.configure()?;
    hand.enable()?;
    timing.bring_up_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "emulated LEAP Hand on {} (servo bus backed by a rapier simulation); control at {rate_hz} Hz",
        emulator.path()
    );

    // 3. The control loop, with the tracker fed from a second thread.
    let goals = reach_goals(&model, &task, args.seed, plan.reach_sets)?;
    let tracker = Tracking::start(
        "cube",
        sim_config.clone(),
        plan.image_width,
        plan.image_height,
    )?;
    let spans = timeline(&plan);
    let ticks: usize = spans.iter().map(|s| s.2).sum();
    let bar = progress_bar(ticks as u64);
    let t0 = Instant::now();
    let mut run = LoopState {
        model: &model,
        task: task.clone(),
        stills: Vec::new(),
        limits: model.joint_limits(),
        open: dex_sim::open_configuration(&model),
        hand_pose,
        proprio,
        policy: policy.as_mut(),
        goals: &goals,
        sim: Arc::clone(&sim),
        plan,
        rate_hz,
        spans: &spans,
        last_target: dex_sim::open_configuration(&model),
        log: Vec::with_capacity(ticks),
        reach: vec![None; plan.reach_sets],
        final_distance: vec![f64::NAN; plan.reach_sets],
        tracker: Some(tracker),
        grasp_heights: [None; 3],
        closed_position: None,
        rest: None,
        end_position: None,
        error: None,
    };
    let report = dex_hw::run_control_loop_while(&mut hand, rate_hz, ticks, |k, state| {
        if stop.load(Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        bar.set_position(k as u64);
        let out = run.tick(k, state);
        if let Some((phase, _, _)) = spans.iter().find(|s| (s.1..s.1 + s.2).contains(&k)) {
            bar.set_message(phase.name());
        }
        out
    });
    bar.finish_and_clear();
    let disabled = hand.disable();
    let events = hand.events();
    let bus_stats = {
        let bus = emulator.bus();
        let b = bus.lock().unwrap_or_else(|e| e.into_inner());
        (b.stats(), b.physics_steps())
    };
    emulator.stop();
    drop(hand);
    timing.control_loop_s = t0.elapsed().as_secs_f64();
    let interrupted = stop.load(Ordering::SeqCst);
    let report = match (report, run.error.take()) {
        (Err(e), _) => {
            return Err(anyhow::Error::from(e).context("the control loop stopped"));
        }
        (Ok(_), Some(e)) => return Err(e.context("the control loop stopped")),
        (Ok(r), None) => r,
    };
    disabled.context("turning torque off")?;
    timing.achieved_hz = report.achieved_hz;
    timing.jitter_p50_us = report.jitter_p50 * 1e6;
    timing.jitter_p99_us = report.jitter_p99 * 1e6;
    timing.jitter_max_us = report.jitter_max * 1e6;
    timing.overruns = report.overruns;
    timing.cycle_work_p50_us = report.busy_p50 * 1e6;
    timing.cycle_work_p99_us = report.busy_p99 * 1e6;
    let t0 = Instant::now();
    let tracker = run
        .tracker
        .take()
        .ok_or_else(|| anyhow::anyhow!("the tracker has finished"))?;
    let (track_frames, track_summary, track_ms, tracked_stills) = tracker.finish()?;
    timing.tracking_s = t0.elapsed().as_secs_f64();
    timing.tracking_ms_per_frame = track_ms;

    // 4. Report.
    let t0 = Instant::now();
    let reached = run.reach.iter().filter(|r| r.is_some()).count();
    let reach_done = run
        .final_distance
        .iter()
        .filter(|d| d.is_finite())
        .count()
        .max(1);
    let grasp = run.grasp_summary();
    let summary = Summary {
        seed: args.seed,
        quick: args.quick,
        interrupted,
        policy: policy_summary,
        control: ControlSummary {
            rate_hz: report.rate_hz,
            cycles: report.cycles,
            bus_instructions: bus_stats.0.instructions,
            bus_crc_errors: bus_stats.0.crc_errors,
            physics_steps: bus_stats.1,
        },
        safety: SafetySummary {
            rejected: events.rejected,
            clamped: events.clamped,
            step_limited: events.step_limited,
            max_step_rad: args.max_step,
        },
        reach: ReachSummary {
            sets: plan.reach_sets,
            reached,
            reached_in_sim: sim_reached,
            success: reached as f64 / reach_done as f64,
            outcomes: run
                .reach
                .iter()
                .zip(&run.final_distance)
                .map(|(t, d)| ReachOutcome {
                    time_to_reach_s: *t,
                    final_max_distance_mm: d * 1e3,
                })
                .collect(),
        },
        grasp,
        tracking: track_summary,
        timing: timing.clone(),
        plan,
    };
    let figure = args.out.join("demo.png");
    write_figure(&figure, &run.log, &track_frames, plan.tilt_deg)?;
    let frames = args.out.join("frames.png");
    crate::demo_frames::write_frames(&frames, &run.stills, &tracked_stills, &sim_config)?;
    write_ticks_csv(&args.out.join("ticks.csv"), &run.log)?;
    timing.report_s = t0.elapsed().as_secs_f64();
    timing.total_s = total.elapsed().as_secs_f64();
    let summary = Summary { timing, ..summary };
    let json = args.out.join("summary.json");
    std::fs::write(&json, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", json.display()))?;
    output(&table(&summary))?;
    output(&format!("figure {}", figure.display()))?;
    output(&format!("frames {}", frames.display()))?;
    output(&format!("summary {}", json.display()))?;
    if interrupted {
        bail!("interrupted: the figure and summary show the ticks that ran");
    }
    Ok(())
}

/// Creates `dir` and checks that a file can be written there.
fn prepare_out(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(".dex-demo-write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("--out {}: cannot write there", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] tick {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// The shipped student (or `--checkpoint`).
fn load_policy(args: &DemoArgs) -> Result<(Box<dyn Policy>, PolicySummary)> {
    let (dir, source) = match &args.checkpoint {
        Some(dir) => (dir.clone(), format!("checkpoint {}", dir.display())),
        None => {
            let dir = args.out.join("shipped-policy");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(dex_policy::ppo::META_FILE), SHIPPED_META)?;
            std::fs::write(dir.join(dex_policy::ppo::WEIGHTS_FILE), SHIPPED_WEIGHTS)?;
            (dir, "shipped (dex-cli/assets/reach-student)".to_string())
        }
    };
    let loaded = dex_policy::load_checkpoint(&dir)
        .with_context(|| format!("loading the policy from {}", dir.display()))?;
    let spec = dex_sim::EnvSpec::from_table(&loaded.env)
        .with_context(|| format!("the environment of the checkpoint in {}", dir.display()))?;
    if spec.task != "reach" || spec.obs != "state" {
        bail!(
            "{}: the demo runs a reach policy from state observations; this checkpoint was \
             trained on task `{}` with `{}` observations",
            dir.display(),
            spec.task,
            spec.obs
        );
    }
    Ok((
        loaded.policy,
        PolicySummary {
            source,
            task: spec.config,
            rows: loaded.env_steps,
            sim_success: None,
        },
    ))
}

/// DAgger from the inverse-kinematics expert, a fixed number of iterations (so the
/// same seed gives the same student).
fn train_policy(
    args: &DemoArgs,
    plan: &Plan,
    stop: &AtomicBool,
) -> Result<(Box<dyn Policy>, PolicySummary)> {
    let model = HandModel::leap_right();
    let env = dex_sim::EnvSpec {
        task: "reach".into(),
        hand: "leap".into(),
        obs: "state".into(),
        config: TaskConfig::default(),
    };
    let mut teacher = dex_policy::ReachIkExpert::new(model, env.config.history)?;
    let mut venv = env.build(32)?;
    let config = dex_policy::DaggerConfig {
        iterations: plan.train_iterations,
        keep: STUDENT_KEEP.to_vec(),
        seed: args.seed,
        bc: dex_policy::BcConfig {
            seed: args.seed,
            ..dex_policy::BcConfig::default()
        },
        ..dex_policy::DaggerConfig::default()
    };
    let dir = args.out.join("trained-policy");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let bar = progress_bar(plan.train_iterations as u64);
    bar.set_message("training the reach policy (DAgger from the IK expert)");
    let mut student = dex_policy::dagger(
        &mut teacher,
        &mut venv,
        &dir.join("dataset"),
        &config,
        env.to_table()?,
        |it, _| {
            bar.set_position(it.iteration as u64 + 1);
            Ok(if stop.load(Ordering::SeqCst) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    bar.finish_and_clear();
    student.save(&dir)?;
    let _ = std::fs::remove_dir_all(dir.join("dataset"));
    let mut eval_env = env.build(25)?;
    let r = dex_policy::evaluate(
        &mut student,
        &mut eval_env,
        25,
        args.seed.wrapping_add(1),
        ActMode::Deterministic,
    )?;
    let rows = student.meta().rows as u64;
    Ok((
        Box::new(student),
        PolicySummary {
            source: format!("trained here ({} DAgger iterations)", plan.train_iterations),
            task: env.config.clone(),
            rows,
            sim_success: Some(r.success_rate),
        },
    ))
}

/// What the student sees of the LEAP reach state: proprioception (0..112) and the
/// targets (124..136), not the fingertip positions nor `target − tip`.
pub(crate) const STUDENT_KEEP: [[usize; 2]; 2] = [[0, 112], [124, 136]];

/// Target sets drawn by the reach task itself (reachable under physics), world frame.
fn reach_goals(
    model: &HandModel,
    task: &TaskConfig,
    seed: u64,
    sets: usize,
) -> Result<Vec<Vec<Point3<f64>>>> {
    let mut env = FingertipReach::new(model.clone(), task.clone(), ReachConfig::default())?;
    (0..sets)
        .map(|i| {
            env.reset(Some(goal_seed(seed, i)))?;
            Ok(env.goals().to_vec())
        })
        .collect()
}

type SharedSim = Arc<Mutex<Box<dyn Simulator>>>;

fn lock(sim: &SharedSim) -> std::sync::MutexGuard<'_, Box<dyn Simulator>> {
    sim.lock().unwrap_or_else(|e| e.into_inner())
}

/// Half a metre below the palm, where it falls freely out of the way.
fn park_cube(sim: &SharedSim, hand_pose: &Isometry3<f64>) -> Result<()> {
    let pose = Isometry3::translation(0.0, 0.0, -0.5) * hand_pose;
    lock(sim).set_object_pose(0, &pose)?;
    Ok(())
}

/// Everything the control-loop closure keeps.
struct LoopState<'a> {
    model: &'a HandModel,
    /// The policy's task settings (action mode above all).
    task: TaskConfig,
    /// Moments to picture after the run.
    stills: Vec<crate::demo_frames::Still>,
    limits: Vec<JointLimits>,
    open: Vec<f64>,
    hand_pose: Isometry3<f64>,
    proprio: Proprioception,
    policy: &'a mut dyn Policy,
    goals: &'a [Vec<Point3<f64>>],
    sim: SharedSim,
    plan: Plan,
    rate_hz: f64,
    spans: &'a [(Phase, usize, usize)],
    last_target: Vec<f64>,
    log: Vec<TickLog>,
    reach: Vec<Option<f64>>,
    final_distance: Vec<f64>,
    tracker: Option<Tracking>,
    /// Heights before closing, closed, at the end (mm).
    grasp_heights: [Option<f64>; 3],
    closed_position: Option<Vector3<f64>>,
    /// Where the cube was put on the palm (world).
    rest: Option<Vector3<f64>>,
    end_position: Option<Vector3<f64>>,
    error: Option<anyhow::Error>,
}

impl LoopState<'_> {
    fn tick(&mut self, k: usize, state: &dex_core::JointState) -> ControlFlow<(), JointTargets> {
        match self.try_tick(k, state) {
            Ok(t) => ControlFlow::Continue(t),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    fn try_tick(&mut self, k: usize, state: &dex_core::JointState) -> Result<JointTargets> {
        let Some(&(phase, start, len)) = self.spans.iter().find(|s| (s.1..s.1 + s.2).contains(&k))
        else {
            bail!("tick {k} is past the plan");
        };
        let i = k - start;
        let s = (i + 1) as f64 / len as f64;
        let tilt = match phase {
            Phase::Tilt => self.plan.tilt_deg * s,
            Phase::Tilted => self.plan.tilt_deg,
            _ => 0.0,
        };
        let grasp: Vec<f64> = self
            .open
            .iter()
            .zip(&self.limits)
            .zip(grasp_fraction())
            .map(|((o, l), f)| o + f * (l.upper - o))
            .collect();
        let target = match phase {
            Phase::Reach(set) => {
                if i == 0 {
                    self.proprio.reset();
                    self.policy.reset(0);
                }
                self.reach_step(set, i, len, state)?
            }
            Phase::Return => {
                let from = &self.last_target;
                from.iter()
                    .zip(&self.open)
                    .map(|(a, b)| a + (b - a) / (len - i) as f64)
                    .collect()
            }
            Phase::Settle => {
                if i == 0 {
                    let palm = self.hand_pose;
                    let model = self.model;
                    let spec_half = lock(&self.sim).objects()[0].shape.half_height();
                    let pose = dex_sim::rest_pose_on_palm(model, &palm, spec_half, 0.003);
                    lock(&self.sim).set_object_pose(0, &pose)?;
                    self.rest = Some(pose.translation.vector);
                }
                self.open.clone()
            }
            Phase::Close => self
                .open
                .iter()
                .zip(&grasp)
                .map(|(o, g)| o + s * (g - o))
                .collect(),
            Phase::Hold | Phase::Tilt | Phase::Tilted => grasp.clone(),
        };
        if matches!(phase, Phase::Tilt | Phase::Tilted) {
            let g = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), tilt.to_radians())
                * Vector3::new(0.0, 0.0, -9.81);
            lock(&self.sim).set_gravity(g)?;
        }
        let caption = match phase {
            Phase::Reach(0) if i == 2 => Some("reach starts, targets red"),
            Phase::Reach(0) if i + 1 == len => Some("reach, end of set 1"),
            Phase::Close if i + 1 == len => Some("grasp closed"),
            Phase::Tilted if i + 1 == len => Some("held, gravity tilted"),
            _ => None,
        };
        if let Some(caption) = caption {
            let goals = match phase {
                Phase::Reach(set) => self.goals[set].clone(),
                _ => Vec::new(),
            };
            self.stills.push(crate::demo_frames::Still {
                t: k as f64 / self.rate_hz,
                caption: caption.to_string(),
                state: lock(&self.sim).save_state(),
                goals,
            });
        }
        // The cube in the palm frame; tracking frames every few ticks of the grasp.
        let in_grasp = !matches!(phase, Phase::Reach(_) | Phase::Return);
        let (height, position) = if in_grasp {
            let sim = lock(&self.sim);
            let pose = sim.object_state(0)?.pose;
            let local = self.hand_pose.inverse() * pose;
            let rest_z = self.rest.map_or(f64::NAN, |r| r.z);
            let tracked = k - self.grasp_start();
            if tracked >= self.plan.settle_ticks / 2
                && tracked.is_multiple_of(self.plan.track_every)
            {
                let snapshot: SimState = sim.save_state();
                let tracker = self
                    .tracker
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the tracker has finished"))?;
                tracker.push(TrackingFrame {
                    t: k as f64 / self.rate_hz,
                    state: snapshot,
                    object_pose: pose,
                })?;
            }
            (
                (pose.translation.z - rest_z) * 1e3,
                Some(local.translation.vector),
            )
        } else {
            (f64::NAN, None)
        };
        match (phase, i + 1 == len) {
            (Phase::Settle, true) => self.grasp_heights[0] = Some(height),
            (Phase::Hold, true) => {
                self.grasp_heights[1] = Some(height);
                self.closed_position = position;
            }
            (Phase::Tilted, true) => {
                self.grasp_heights[2] = Some(height);
                self.end_position = position;
            }
            _ => {}
        }
        let slip_mm = match (self.closed_position, position) {
            (Some(a), Some(b)) => (b - a).norm() * 1e3,
            _ => f64::NAN,
        };
        self.log.push(TickLog {
            t: k as f64 / self.rate_hz,
            q: state.q.clone(),
            target: target.clone(),
            object_height_mm: height,
            slip_mm,
            tilt_deg: tilt,
            phase: phase.name(),
        });
        self.last_target = target.clone();
        Ok(JointTargets::new(target))
    }

    fn grasp_start(&self) -> usize {
        self.spans
            .iter()
            .find(|s| s.0 == Phase::Settle)
            .map_or(0, |s| s.1)
    }

    /// One policy step toward target set `set`: the reach task's observation built from
    /// what the driver measured, the policy's action mapped onto the joint ranges.
    fn reach_step(
        &mut self,
        set: usize,
        i: usize,
        len: usize,
        state: &dex_core::JointState,
    ) -> Result<Vec<f64>> {
        let goals_world = &self.goals[set];
        let palm = self.hand_pose.inverse();
        let tips = self.model.fingertip_positions(&state.q)?;
        let goals: Vec<Point3<f64>> = goals_world.iter().map(|g| palm * g).collect();
        let distance = tips
            .iter()
            .zip(&goals)
            .map(|(t, g)| (t - g).norm())
            .fold(0.0, f64::max);
        if distance <= REACH_RADIUS && self.reach[set].is_none() {
            self.reach[set] = Some(i as f64 / self.rate_hz);
        }
        if i + 1 == len {
            self.final_distance[set] = distance;
        }
        self.proprio.record(&state.q, &self.last_target)?;
        let mut obs = Vec::with_capacity(self.policy.observation_dim());
        self.proprio.write(&state.qdot, &mut obs)?;
        reach_state(&tips, &goals, &mut obs);
        let obs = Array2::from_shape_vec((1, obs.len()), obs)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let action = self
            .policy
            .act(obs.view(), ActMode::Deterministic, &mut rng)?;
        // The reach task's action space is [-1, 1]: the student's output is clipped to
        // it, then mapped as in the task the policy was trained on.
        let action: Vec<f32> = action.row(0).iter().map(|a| a.clamp(-1.0, 1.0)).collect();
        Ok(self
            .task
            .action_targets(&self.limits, &action, &self.last_target, Some(&state.q))?)
    }

    fn grasp_summary(&self) -> GraspSummary {
        let slip_mm = match (self.closed_position, self.end_position) {
            (Some(a), Some(b)) => Some((b - a).norm() * 1e3),
            _ => None,
        };
        GraspSummary {
            held: slip_mm.is_some_and(|s| s < HELD_SLIP_MM),
            tilt_deg: self.plan.tilt_deg,
            height_before_mm: self.grasp_heights[0],
            height_closed_mm: self.grasp_heights[1],
            height_end_mm: self.grasp_heights[2],
            slip_mm,
        }
    }
}

/// The same target sets in simulation, without the bus: the policy acting on the
/// reach task's own observations for its 60-step episodes, from the task's own start.
/// How many sets it reaches (the reference for the run over the bus).
fn reach_in_sim(
    policy: &mut dyn Policy,
    model: &HandModel,
    task: &TaskConfig,
    seed: u64,
    sets: usize,
) -> Result<usize> {
    let mut env = FingertipReach::new(model.clone(), task.clone(), ReachConfig::default())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut reached = 0;
    for i in 0..sets {
        let (mut obs, _) = env.reset(Some(goal_seed(seed, i)))?;
        policy.reset(0);
        loop {
            let batch = Array2::from_shape_vec((1, obs.state.len()), obs.state.clone())?;
            let a = policy.act(batch.view(), ActMode::Deterministic, &mut rng)?;
            let a: Vec<f32> = a.row(0).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            let step = env.step(&a)?;
            if step.info.success {
                reached += 1;
            }
            if step.terminated || step.truncated {
                break;
            }
            obs = step.obs;
        }
    }
    Ok(reached)
}

fn goal_seed(seed: u64, set: usize) -> u64 {
    seed.wrapping_mul(1000).wrapping_add(set as u64)
}

/// The cube counts as held if it moved less than this in the palm frame (mm).
const HELD_SLIP_MM: f64 = 30.0;

/// How far each joint closes from open toward its upper limit for the grasp (model
/// order: index, middle, ring — side-to-side, MCP, PIP, DIP — then the thumb).
fn grasp_fraction() -> [f64; 16] {
    [
        0.0, 0.6, 0.6, 0.6, // index
        0.0, 0.6, 0.6, 0.6, // middle
        0.0, 0.6, 0.6, 0.6, // ring
        0.8, 0.5, 0.5, 0.5, // thumb
    ]
}

fn table(s: &Summary) -> String {
    let c = &s.control;
    let w = &s.timing;
    let t = &s.tracking;
    let mut rows: Vec<(String, String)> = vec![
        ("policy".into(), s.policy.source.clone()),
        (
            "control rate".into(),
            format!(
                "{:.1} Hz achieved of {:.0} Hz requested, {} cycles, {} overruns",
                w.achieved_hz, c.rate_hz, c.cycles, w.overruns
            ),
        ),
        (
            "period jitter".into(),
            format!(
                "p50 {:.0} us, p99 {:.0} us, max {:.0} us; cycle work p50 {:.0} us, p99 {:.0} us",
                w.jitter_p50_us,
                w.jitter_p99_us,
                w.jitter_max_us,
                w.cycle_work_p50_us,
                w.cycle_work_p99_us
            ),
        ),
        (
            "servo bus".into(),
            format!(
                "{} instructions, {} CRC errors, {} physics steps",
                c.bus_instructions, c.bus_crc_errors, c.physics_steps
            ),
        ),
        (
            "safety events".into(),
            format!(
                "{} step-limited, {} clamped, {} rejected",
                s.safety.step_limited, s.safety.clamped, s.safety.rejected
            ),
        ),
        (
            "reach".into(),
            format!(
                "{}/{} target sets reached (all tips within 2 cm); {}/{} in simulation without the bus{}",
                s.reach.reached,
                s.reach.sets,
                s.reach.reached_in_sim,
                s.reach.sets,
                s.policy
                    .sim_success
                    .map(|v| format!("; trained policy's success in simulation {v:.2}"))
                    .unwrap_or_default()
            ),
        ),
        (
            "grasp".into(),
            format!(
                "{} through a {:.0} deg tilt; slip {}",
                if s.grasp.held { "held" } else { "lost" },
                s.grasp.tilt_deg,
                s.grasp
                    .slip_mm
                    .map_or("n/a".into(), |v| format!("{v:.1} mm"))
            ),
        ),
        (
            "tracking".into(),
            format!(
                "{} points over {} frames ({}x{}): delta_avg {:.3}, 3D error median {:.2} mm, pose {:.2} deg / {:.2} mm at the end ({:.0} ms per frame)",
                t.points,
                t.frames,
                t.width,
                t.height,
                t.delta_avg,
                t.median_3d_mm,
                t.final_pose_deg,
                t.final_pose_mm,
                w.tracking_ms_per_frame
            ),
        ),
        (
            "wall time".into(),
            format!(
                "train {:.1} s, bring-up {:.2} s, control loop {:.1} s, tracking {:.1} s (after the loop), report {:.1} s, total {:.1} s",
                s.timing.train_s,
                s.timing.bring_up_s,
                s.timing.control_loop_s,
                s.timing.tracking_s,
                s.timing.report_s,
                s.timing.total_s
            ),
        ),
    ];
    if s.interrupted {
        rows.insert(0, ("status".into(), "interrupted".into()));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fmt_time(l: Option<&TickLog>) -> String {
    l.map_or("-".into(), |l| format!("{:.1}", l.t))
}

/// Joints shown in the figure: index MCP flexion, middle PIP, thumb rotation.
const SHOWN_JOINTS: [usize; 3] = [1, 6, 13];

/// One row per control tick: time, phase, tilt, cube height, then each joint's target
/// and measured angle.
fn write_ticks_csv(path: &Path, log: &[TickLog]) -> Result<()> {
    let model = HandModel::leap_right();
    let names = model.joint_names();
    let mut text = String::from("t_s,phase,tilt_deg,cube_height_mm");
    for n in &names {
        text.push_str(&format!(",{n}_target,{n}_measured"));
    }
    text.push('\n');
    for l in log {
        text.push_str(&format!(
            "{:.3},{},{:.3},{:.3}",
            l.t, l.phase, l.tilt_deg, l.object_height_mm
        ));
        for (t, q) in l.target.iter().zip(&l.q) {
            text.push_str(&format!(",{t:.5},{q:.5}"));
        }
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_figure(
    path: &Path,
    log: &[TickLog],
    track: &[crate::demo_track::FrameError],
    tilt_deg: f64,
) -> Result<()> {
    let names = HandModel::leap_right()
        .joint_names()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    let mut joint_series = Vec::new();
    for &j in &SHOWN_JOINTS {
        joint_series.push(Series {
            name: format!("{} target", names[j]),
            points: log.iter().map(|l| (l.t, l.target[j])).collect(),
        });
        joint_series.push(Series {
            name: format!("{} measured", names[j]),
            points: log.iter().map(|l| (l.t, l.q[j])).collect(),
        });
    }
    let panels = [
        Panel {
            title: "joint targets sent over the bus vs angles read back".into(),
            x_label: "time (s)".into(),
            y_label: "rad".into(),
            series: joint_series,
        },
        Panel {
            title: "tracking error against the simulator's ground truth".into(),
            x_label: "time (s)".into(),
            y_label: "px / mm".into(),
            series: vec![
                Series {
                    name: "2D median (px)".into(),
                    points: track.iter().map(|f| (f.t, f.median_px)).collect(),
                },
                Series {
                    name: "3D median (mm)".into(),
                    points: track.iter().map(|f| (f.t, f.median_3d_mm)).collect(),
                },
                Series {
                    name: "Kabsch pose (mm)".into(),
                    points: track.iter().map(|f| (f.t, f.pose_mm)).collect(),
                },
            ],
        },
        Panel {
            title: format!(
                "the cube in the grasp; gravity tilts 0 to {tilt_deg:.0} deg from {} s to {} s",
                fmt_time(log.iter().find(|l| l.tilt_deg > 0.0)),
                fmt_time(log.iter().find(|l| l.tilt_deg >= tilt_deg)),
            ),
            x_label: "time (s)".into(),
            y_label: "mm".into(),
            series: vec![
                Series {
                    name: "height over its rest on the palm".into(),
                    points: log.iter().map(|l| (l.t, l.object_height_mm)).collect(),
                },
                Series {
                    name: "displacement in the palm frame since the grasp closed".into(),
                    points: log.iter().map(|l| (l.t, l.slip_mm)).collect(),
                },
            ],
        },
    ];
    write_png(path, &panels, 1000, 300)
}
