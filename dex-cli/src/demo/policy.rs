//! The policy of the run: the shipped student or a checkpoint, or one trained during the run; reach targets and the reference run in simulation.

use std::ops::ControlFlow;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

use dex_core::HandModel;

use dex_policy::{ActMode, Policy};
use dex_sim::{Env, FingertipReach, ReachConfig, TaskConfig};
use nalgebra::Point3;
use ndarray::Array2;
use rand::SeedableRng;

use super::args::*;

use super::plan::*;
use super::progress::progress_bar;
use super::report::*;

/// The shipped student (or `--checkpoint`).
pub(super) fn load_policy(args: &DemoArgs) -> Result<(Box<dyn Policy>, PolicySummary)> {
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
pub(super) fn train_policy(
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
pub(super) fn reach_goals(
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

/// The same target sets in simulation, without the bus: the policy acting on the
/// reach task's own observations for its 60-step episodes, from the task's own start.
/// How many sets it reaches (the reference for the run over the bus).
pub(super) fn reach_in_sim(
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

pub(super) fn goal_seed(seed: u64, set: usize) -> u64 {
    seed.wrapping_mul(1000).wrapping_add(set as u64)
}
