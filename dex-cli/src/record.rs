//! `--rerun FILE.rrd`: recordings for the rerun viewer, when dex is built with the
//! `rerun` feature.

use std::path::Path;

use anyhow::Result;
use dex_core::HandModel;
use dex_rerun::Recorder;

/// The command that builds dex with recordings.
#[cfg(not(feature = "rerun"))]
const BUILD_WITH_RERUN: &str = "cargo build --release -p dex-cli --features rerun";

/// A recorder writing `path` for `model`'s hand.
#[cfg(feature = "rerun")]
pub(crate) fn open(path: &Path, model: &HandModel) -> Result<Recorder> {
    let sink = dex_rerun::RerunSink::create("dex", path)?;
    Ok(Recorder::new(Box::new(sink), model)?)
}

/// Without the `rerun` feature: an error that says how to get it.
#[cfg(not(feature = "rerun"))]
pub(crate) fn open(path: &Path, _model: &HandModel) -> Result<Recorder> {
    anyhow::bail!(
        "--rerun {}: this dex was built without the `rerun` feature; build it with `{BUILD_WITH_RERUN}`",
        path.display()
    )
}

/// Checks that a recording can be opened before a long run starts (the feature, the
/// directory), so a bad `--rerun` fails at once.
pub(crate) fn check(path: &Path) -> Result<()> {
    if !dex_rerun::RERUN_ENABLED {
        open(path, &HandModel::leap_right())?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!(
            "--rerun {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Width and height of the overview camera an evaluation recording renders.
const EVAL_IMAGE: (usize, usize) = (160, 120);

/// Records one episode of `policy` on `env`'s task into `path`: environment 0 of an
/// evaluation with `seed` (same start, same action sampling), every control step's
/// links, objects and joint series, and an overview camera's grey image, from the
/// reset to the episode's last state. Returns the steps and the return.
pub(crate) fn record_episode(
    env: &dex_sim::EnvSpec,
    policy: &mut dyn dex_policy::Policy,
    seed: u64,
    mode: dex_policy::ActMode,
    path: &Path,
) -> Result<(usize, f64)> {
    use anyhow::{Context, anyhow};
    use rand::SeedableRng;

    let model = env.model()?;
    let mut venv = env.build(1)?;
    let mut rec = open(path, &model)?;
    let od = policy.observation_dim();
    let (low, high) = (
        venv.action_space().low.clone(),
        venv.action_space().high.clone(),
    );
    // As dex_policy::evaluate seeds its action sampling.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xE7A1);
    let (obs, _) = venv.reset(seed)?;
    policy.reset(0);
    let mut state = obs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the environment gave no observation"))?
        .state;
    let (mut steps, mut ret) = (0usize, 0.0);
    // A time limit ends every task's episode; this only guards against one without.
    const MAX_STEPS: usize = 100_000;
    loop {
        let sim = venv.envs()[0].simulator().ok_or_else(|| {
            anyhow!(
                "--rerun: task `{}` has no simulator to record (it is physics-free)",
                env.task
            )
        })?;
        log_frame(&mut rec, sim, steps)?;
        if steps == MAX_STEPS {
            break;
        }
        let x = ndarray::Array2::from_shape_vec((1, od), state)
            .context("the observation's width is not the policy's")?;
        let a = policy.act(x.view(), mode, &mut rng)?;
        let action: Vec<f32> = a
            .row(0)
            .iter()
            .zip(&low)
            .zip(&high)
            .map(|((v, l), h)| v.clamp(*l, *h))
            .collect();
        let step = venv.step(&action)?;
        steps += 1;
        ret += step.rewards[0];
        if step.terminated[0] || step.truncated[0] {
            // The scene at the episode's end, before the reset that follows.
            let sim = venv.envs()[0]
                .simulator()
                .ok_or_else(|| anyhow!("the simulator went away"))?;
            log_frame(&mut rec, sim, steps)?;
            break;
        }
        state = step
            .obs
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the environment gave no observation"))?
            .state;
    }
    rec.flush()?;
    Ok((steps, ret))
}

/// One control step of a recorded episode: the scene, the joint series and the
/// overview camera, aimed at the fingertips' mean.
fn log_frame(rec: &mut Recorder, sim: &dyn dex_sim::Simulator, step: usize) -> Result<()> {
    rec.set_time(step as i64, sim.time());
    rec.log_simulator(sim)?;
    let tips = sim.fingertip_positions();
    let camera = dex_sim::Camera::overview_of(EVAL_IMAGE.0, EVAL_IMAGE.1, &tips)?;
    rec.log_camera("camera", &sim.render_depth(&camera)?, None)?;
    Ok(())
}
