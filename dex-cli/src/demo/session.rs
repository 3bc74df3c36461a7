//! The run: the policy, the hand behind the emulated bus, the control loop with the tracker beside it, the report.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use dex_core::HandModel;
use dex_hw::emulator::{PhysicsClock, PtyEmulator, SimJoints};
use dex_hw::{
    HandDriver, LeapConfig, LeapHand, LimitPolicy, SafetyConfig, SafetyLimits, SerialTransport,
    ServoBus,
};
use dex_policy::Policy;
use dex_sim::{Proprioception, Simulator};

use super::track::Tracking;

use crate::stdout::output;

use super::args::*;
use super::control::*;
use super::plan::*;
use super::policy::*;
use super::progress::progress_bar;
use super::report::*;

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
    if let Some(path) = &args.rerun {
        crate::record::check(path)?;
    }
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

    let mut recorder = match &args.rerun {
        Some(path) => Some(crate::record::open(path, &model)?),
        None => None,
    };
    let sim_reached = reach_in_sim(policy.as_mut(), &model, &task, args.seed, plan.reach_sets)?;

    // 2. The hand: a simulation behind a servo bus on a pseudo-terminal.
    let t0 = Instant::now();
    let sim_config = task.sim_config(&model);
    let rate_hz = 1.0 / sim_config.control_period();
    let scene = crate::hw::leap_sim_scene("cube", sim_config.clone(), None)?;
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
        recorder.as_ref().map(|r| r.fork()),
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
        recorder: recorder.take(),
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
    super::frames::write_frames(&frames, &run.stills, &tracked_stills, &sim_config)?;
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
    if let (Some(mut rec), Some(path)) = (run.recorder.take(), &args.rerun) {
        rec.flush()?;
        output(&format!("rerun {}", path.display()))?;
    }
    if interrupted {
        bail!("interrupted: the figure and summary show the ticks that ran");
    }
    Ok(())
}

/// Creates `dir` and checks that a file can be written there.
pub(super) fn prepare_out(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(".dex-demo-write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("--out {}: cannot write there", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
