//! Dex4D's representation question on the physics-free pose proxy: distil the analytic
//! teacher into a point-track student by DAgger for a fixed time budget, then evaluate
//! it on five-waypoint tracks, closed loop, beside the teacher and the open-loop plan.
//!
//! ```sh
//! cargo run --release -p dex-policy --example dex4d_proxy -- \
//!     [--encoder paired|decoupled|mlp] [--no-attention] [--no-world-model] [--no-mask] \
//!     [--dex4d-means] \
//!     [--paper] [--minutes M | --iterations N] [--seed S] [--envs N] [--episodes E] [--out DIR] \
//!     [--load DIR] [--baselines]
//! ```
//!
//! Prints one line per evaluation: `eval <name> success <SR> progress <TP> sym <SR>
//! asym <SR> steps/wp <x>`. `--baselines` evaluates the teacher and the open-loop plan
//! (slip on and off) instead of training. `--load DIR` evaluates a saved student.
//! `--dex4d-means`: the point encoder averages and pools over every slot, hidden ones
//! as zeros, as Dex4D's code does (`PointTrackConfig::visible_only` off).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use dex_policy::PoseProxyExpert;
use dex_policy::point_track::{
    PointEncoding, PointTrackConfig, PointTrackDagger, PointTrackDaggerConfig, PointTrackInputs,
    PointTrackPolicy,
};
use dex_policy::proxy::{TrackController, TrackEval, evaluate_track};
use dex_sim::{Env, PointMask, PoseProxy, PoseProxyConfig, ProxyLayout, VecEnv};

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn line(name: &str, e: &TrackEval) {
    println!(
        "eval {name} success {:.3} progress {:.3} sym {:.3} ({}) asym {:.3} ({}) steps/wp {:.1}",
        e.success,
        e.progress,
        e.success_symmetric.0,
        e.success_symmetric.1,
        e.success_asymmetric.0,
        e.success_asymmetric.1,
        e.steps_per_waypoint
    );
}

fn main() -> anyhow::Result<()> {
    dex_alloc::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let has = |name: &str| args.iter().any(|a| a == name);
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seed: u64 = flag("--seed").map_or(Ok(0), |v| v.parse())?;
    let episodes: usize = flag("--episodes").map_or(Ok(100), |v| v.parse())?;
    let eval_seed = 1000 + seed;
    let mut train = PoseProxyConfig::default();
    if has("--no-mask") {
        train.mask = PointMask {
            height_mask: false,
            ..PointMask::default()
        };
        train.plane_mask = false;
    }
    let track = PoseProxyConfig::track();

    if has("--baselines") {
        let mut teacher = PoseProxyExpert::new(&track);
        for (name, config) in [
            ("teacher", track.clone()),
            ("teacher-noslip", track.clone().without_slip()),
        ] {
            let e = evaluate_track(
                TrackController::Policy(&mut teacher),
                &config,
                episodes,
                eval_seed,
            )?;
            line(name, &e);
        }
        for (name, config) in [
            ("open-loop", track.clone()),
            ("open-loop-noslip", track.clone().without_slip()),
        ] {
            let e = evaluate_track(
                TrackController::OpenLoop { settle: 1 },
                &config,
                episodes,
                eval_seed,
            )?;
            line(name, &e);
        }
        return Ok(());
    }

    let mut student = if let Some(dir) = flag("--load") {
        PointTrackPolicy::load(&PathBuf::from(dir))?
    } else {
        let mut config = if has("--paper") {
            PointTrackConfig::paper()
        } else {
            PointTrackConfig::default()
        };
        config.encoder = flag("--encoder").map_or(Ok(PointEncoding::Paired), |v| v.parse())?;
        config.attention = !has("--no-attention");
        config.world_model = !has("--no-world-model");
        config.visible_only = !has("--dex4d-means");
        let minutes: f64 = flag("--minutes").map_or(Ok(f64::INFINITY), |v| v.parse())?;
        let iterations: usize = flag("--iterations").map_or(Ok(usize::MAX), |v| v.parse())?;
        anyhow::ensure!(
            minutes.is_finite() || iterations < usize::MAX,
            "give a budget: --minutes M or --iterations N"
        );
        let envs: usize = flag("--envs").map_or(Ok(256), |v| v.parse())?;
        let make =
            |_| -> dex_sim::Result<Box<dyn Env>> { Ok(Box::new(PoseProxy::new(train.clone())?)) };
        let venv = VecEnv::from_fn(envs, make)?;
        let dim = venv.observation_spec().state.dim();
        let inputs = PointTrackInputs::proxy(&ProxyLayout::new(train.slots));
        let student = PointTrackPolicy::new(&config, inputs, dim, 6, seed, Default::default())?;
        let mut teacher = PoseProxyExpert::new(&train);
        let dagger_config = PointTrackDaggerConfig {
            seed,
            ..PointTrackDaggerConfig::default()
        };
        let mut dagger = PointTrackDagger::new(student, venv, dagger_config, seed)?;
        let start = Instant::now();
        let (mut episodes_seen, mut successes) = (0usize, 0usize);
        loop {
            let it = dagger.iterate(&mut teacher)?;
            episodes_seen += it.episodes;
            successes += it.successes;
            if it.iteration % 200 == 0 {
                println!(
                    "it {} steps {} bc {:.4} wm {:.4} train-success {:.3} ({} eps) {:.0}s",
                    it.iteration,
                    it.env_steps,
                    it.bc_loss,
                    it.world_model_loss,
                    successes as f64 / episodes_seen.max(1) as f64,
                    episodes_seen,
                    start.elapsed().as_secs_f64()
                );
                episodes_seen = 0;
                successes = 0;
            }
            if start.elapsed().as_secs_f64() > minutes * 60.0 || it.iteration >= iterations {
                println!(
                    "trained {} iterations, {} env steps, {:.0} s",
                    it.iteration,
                    it.env_steps,
                    start.elapsed().as_secs_f64()
                );
                break;
            }
        }
        let student = dagger.into_student();
        if let Some(dir) = flag("--out") {
            student.save(&PathBuf::from(dir))?;
        }
        student
    };

    let e = evaluate_track(
        TrackController::Policy(&mut student),
        &track,
        episodes,
        eval_seed,
    )?;
    line("student", &e);
    let e = evaluate_track(
        TrackController::Policy(&mut student),
        &track.clone().without_slip(),
        episodes,
        eval_seed,
    )?;
    line("student-noslip", &e);
    for k in [64, 32, 16, 8] {
        let config = PoseProxyConfig {
            mask: PointMask {
                fixed_visible: Some(k),
                ..track.mask
            },
            ..track.clone()
        };
        let e = evaluate_track(
            TrackController::Policy(&mut student),
            &config,
            episodes,
            eval_seed,
        )?;
        line(&format!("student-visible{k}"), &e);
    }
    Ok(())
}
