//! `dex sim`: benchmark, run and render the simulator.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use dex_core::HandModel;
use dex_sim::{
    Camera, Env, ObjectSpec, RapierSim, SimConfig, Simulator, TaskConfig, make_env,
    rest_pose_on_palm,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::stdout::output;

/// `dex sim` subcommands.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Step a hand holding its initial pose with an object resting in the palm, on one
    /// thread; the last line is `steps_per_s <number>`.
    Bench(BenchArgs),
    /// Run a task with a scripted policy; the last line is `digest <hex>`.
    Run(RunArgs),
    /// Render a depth image of a hand and an object to a PNG file.
    Render(RenderArgs),
    /// Write the scene `dex sim bench` steps (the hand at its mount pose, the object
    /// resting on the palm) as MJCF, MuJoCo's XML model format.
    Mjcf(MjcfArgs),
}

/// Arguments of `dex sim mjcf`.
#[derive(Debug, Args)]
pub struct MjcfArgs {
    /// Built-in hand (`leap`, `allegro`) or a URDF path.
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Object on the palm (as `dex sim bench`; `chaos-box` is not exported).
    #[arg(long, default_value = "none")]
    object: String,
    /// Physics time step (s).
    #[arg(long, default_value_t = 0.002)]
    dt: f64,
    /// The hand's root at the origin instead of its mount pose (the frame `dex fk` gives
    /// link poses in).
    #[arg(long)]
    at_origin: bool,
    /// Output file; standard output without it.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Arguments of `dex sim bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Built-in hand (`leap`, `allegro`) or a URDF path.
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Object in the palm (`cube`, `sphere`, `cylinder`, `capsule`, `mug`, a `.obj`
    /// path, `none`, or `chaos-box`: the hand in a closed box of 40 light balls).
    #[arg(long, default_value = "cube")]
    object: String,
    /// Physics steps to time.
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Physics time step (s).
    #[arg(long, default_value_t = 0.002)]
    dt: f64,
    /// Physics engine: `rapier` (built in) or `mujoco` (dex built with the `mujoco`
    /// feature, see scripts/mujoco-setup.sh).
    #[arg(long, default_value = "rapier")]
    backend: String,
    #[command(flatten)]
    file: HandFileArgs,
}

/// The hand from the user's MJCF file (MuJoCo backend).
#[derive(Debug, Args)]
pub struct HandFileArgs {
    /// Simulate the hand of this MJCF file (e.g. MuJoCo Menagerie's
    /// `leap_hand/right_hand.xml`) in place of dex's model of `--hand`, placed so that
    /// its joints coincide with the model's (needs `--backend mujoco`).
    #[arg(long)]
    mjcf: Option<PathBuf>,
    /// A joint of `--hand` and its name in the `--mjcf` file, `MODEL=FILE` (repeat;
    /// joints not listed keep their names).
    #[arg(long = "joint", value_name = "MODEL=FILE", requires = "mjcf")]
    joints: Vec<String>,
}

impl HandFileArgs {
    /// The file and its joint map, checked against `backend`.
    fn hand(&self, backend: &str) -> anyhow::Result<Option<dex_sim::MjcfHand>> {
        let Some(path) = &self.mjcf else {
            return Ok(None);
        };
        if backend != "mujoco" {
            bail!("--mjcf needs --backend mujoco (rapier simulates dex's own model of the hand)");
        }
        let mut hand = dex_sim::MjcfHand::new(path);
        for pair in &self.joints {
            let Some((model, file)) = pair.split_once('=') else {
                bail!("--joint `{pair}`: expected MODEL=FILE");
            };
            hand = hand.with_joint(model.trim(), file.trim());
        }
        Ok(Some(hand))
    }
}

/// Scripted policies of `dex sim run`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyKind {
    /// Uniform random actions in [-1, 1], seeded.
    Random,
    /// All-zero actions (joints at mid range).
    Zero,
}

/// Arguments of `dex sim run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Built-in hand (`leap`, `allegro`) or a URDF path.
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Task: `reach`, `rotate`, `anypose`, `anygrasp`.
    #[arg(long, default_value = "reach")]
    task: String,
    /// Seed of the environment and the random policy.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Control steps to run.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// The policy.
    #[arg(long, value_enum, default_value_t = PolicyKind::Random)]
    policy: PolicyKind,
    /// Domain randomisation settings (TOML file).
    #[arg(long)]
    randomization: Option<PathBuf>,
    /// Physics engine: `rapier` (built in) or `mujoco` (dex built with the `mujoco`
    /// feature, see scripts/mujoco-setup.sh).
    #[arg(long, default_value = "rapier")]
    backend: String,
    #[command(flatten)]
    file: HandFileArgs,
}

/// Arguments of `dex sim render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Built-in hand (`leap`, `allegro`) or a URDF path.
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Object in the palm (as for `bench`).
    #[arg(long, default_value = "cube")]
    object: String,
    /// Image width (pixels).
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Image height (pixels).
    #[arg(long, default_value_t = 128)]
    height: usize,
    /// Render at `squint` times the resolution and area-downsample.
    #[arg(long, default_value_t = 1)]
    squint: usize,
    /// Output PNG (8-bit grey: near bright, far dark, nothing black).
    #[arg(long)]
    out: PathBuf,
    /// Also write the textured grayscale image (what point trackers see) to this PNG.
    #[arg(long)]
    gray: Option<PathBuf>,
    /// Physics engine: `rapier` (built in) or `mujoco` (dex built with the `mujoco`
    /// feature, see scripts/mujoco-setup.sh).
    #[arg(long, default_value = "rapier")]
    backend: String,
    #[command(flatten)]
    file: HandFileArgs,
}

/// Runs a `dex sim` subcommand.
pub fn run(cmd: SimCommand) -> anyhow::Result<()> {
    match cmd {
        SimCommand::Bench(a) => bench(a),
        SimCommand::Run(a) => run_task(a),
        SimCommand::Render(a) => render(a),
        SimCommand::Mjcf(a) => mjcf(a),
    }
}

fn mjcf(a: MjcfArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        dt: a.dt,
        ..SimConfig::default()
    };
    let sim = scene(&a.hand, &a.object, config)?;
    let mut config = sim.config().clone();
    let mut poses = object_poses(&sim)?;
    if a.at_origin {
        let to_origin = config.hand_pose.inverse();
        for p in &mut poses {
            *p = to_origin * *p;
        }
        config.gravity = to_origin.rotation * config.gravity;
        config.hand_pose = nalgebra::Isometry3::identity();
    }
    let text = dex_sim::to_mjcf(sim.model(), &config, sim.objects(), &poses)?;
    match &a.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => output(text.trim_end())?,
    }
    Ok(())
}

/// A hand with `object` resting on its palm (or alone for `none`).
fn scene(hand: &str, object: &str, config: SimConfig) -> anyhow::Result<RapierSim> {
    let model = HandModel::load(hand).with_context(|| format!("loading hand `{hand}`"))?;
    let config = SimConfig {
        hand_pose: dex_sim::mount_pose(&model),
        ..config
    };
    if object == "none" {
        return Ok(RapierSim::hand_only(model, config)?);
    }
    if object == "chaos-box" {
        // Settled for a second and a half, as the balls lie once the hand is in the box.
        let s = dex_sim::chaos_box(&model, &config, &dex_sim::ChaosBox::default())?;
        let steps = (1.5 / s.config.dt).round() as usize;
        let mut sim = RapierSim::new(model, &s.objects, &s.poses, s.config)?;
        sim.step_physics(steps)?;
        return Ok(sim);
    }
    let spec = ObjectSpec::named(object)?;
    let pose = rest_pose_on_palm(&model, &config.hand_pose, spec.shape.half_height(), 0.001);
    Ok(RapierSim::new(model, &[spec], &[pose], config)?)
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let config = SimConfig {
        dt: a.dt,
        substeps: 1,
        ..SimConfig::default()
    };
    a.file.hand(&a.backend)?;
    match a.backend.as_str() {
        "rapier" => {}
        "mujoco" => return bench_mujoco(&a, config),
        other => bail!("--backend `{other}`: known backends are `rapier` and `mujoco`"),
    }
    let mut sim = scene(&a.hand, &a.object, config)?;
    let hold = sim.joint_targets().to_vec();
    sim.set_joint_targets(&hold)?;
    // Let the object settle before timing.
    sim.step_physics(100)?;
    let start = Instant::now();
    sim.step_physics(a.steps)?;
    let secs = start.elapsed().as_secs_f64();
    let (pairs, touching) = sim.contact_pair_counts();
    output(&format!(
        "hand {} object {} dt {} steps {} wall_s {:.3} contact_pairs {} touching {}",
        sim.model().name(),
        a.object,
        a.dt,
        a.steps,
        secs,
        pairs,
        touching
    ))?;
    bench_result(&sim, a.steps, secs)
}

/// The last lines of `dex sim bench`: where the first object rests, then the rate.
fn bench_result(sim: &dyn Simulator, steps: usize, secs: f64) -> anyhow::Result<()> {
    if !sim.objects().is_empty() {
        let s = sim.object_state(0)?;
        let p = s.pose.translation.vector;
        output(&format!(
            "object_position {:.4} {:.4} {:.4} speed {:.5}",
            p.x,
            p.y,
            p.z,
            s.linear_velocity.norm()
        ))?;
    }
    output(&format!("steps_per_s {:.0}", steps as f64 / secs))
}

/// The world poses of a scene's objects.
fn object_poses(sim: &dyn Simulator) -> dex_sim::Result<Vec<nalgebra::Isometry3<f64>>> {
    (0..sim.objects().len())
        .map(|i| sim.object_state(i).map(|s| s.pose))
        .collect()
}

/// `dex sim bench --backend mujoco`: the same scene, stepped by MuJoCo.
#[cfg(feature = "mujoco")]
fn bench_mujoco(a: &BenchArgs, config: SimConfig) -> anyhow::Result<()> {
    let mut sim = mujoco_of(&scene(&a.hand, &a.object, config)?, a.file.hand("mujoco")?)?;
    sim.step_physics(100)?;
    let start = Instant::now();
    sim.step_physics(a.steps)?;
    let secs = start.elapsed().as_secs_f64();
    output(&format!(
        "hand {} object {} dt {} steps {} wall_s {:.3} backend mujoco contacts {}",
        sim.model().name(),
        a.object,
        a.dt,
        a.steps,
        secs,
        sim.contact_count()
    ))?;
    bench_result(&sim, a.steps, secs)
}

/// The scene of a rapier simulator (hand, objects where they are, settings) in MuJoCo,
/// with the hand of the user's MJCF file when `mjcf` names one.
#[cfg(feature = "mujoco")]
fn mujoco_of(
    rapier: &dex_sim::RapierSim,
    mjcf: Option<dex_sim::MjcfHand>,
) -> anyhow::Result<dex_sim::MujocoSim> {
    Ok(dex_sim::MujocoSim::new(
        rapier.model().clone(),
        rapier.objects(),
        &object_poses(rapier)?,
        SimConfig {
            mjcf,
            ..rapier.config().clone()
        },
    )?)
}

/// The error of `--backend mujoco` in a dex built without the feature.
#[cfg(not(feature = "mujoco"))]
fn without_mujoco() -> anyhow::Error {
    anyhow::anyhow!(
        "--backend mujoco: this dex was built without the `mujoco` feature; run \
         `eval \"$(scripts/mujoco-setup.sh)\" && cargo build --release -p dex-cli --features mujoco`"
    )
}

/// Without the `mujoco` feature: an error that says how to build with it.
#[cfg(not(feature = "mujoco"))]
fn bench_mujoco(_a: &BenchArgs, _config: SimConfig) -> anyhow::Result<()> {
    Err(without_mujoco())
}

/// The scene of `hand` and `object` on `backend`.
fn backend_scene(
    hand: &str,
    object: &str,
    config: SimConfig,
    backend: &str,
    file: &HandFileArgs,
) -> anyhow::Result<Box<dyn Simulator>> {
    let mjcf = file.hand(backend)?;
    let rapier = scene(hand, object, config)?;
    match backend {
        "rapier" => Ok(Box::new(rapier)),
        #[cfg(feature = "mujoco")]
        "mujoco" => Ok(Box::new(mujoco_of(&rapier, mjcf)?)),
        #[cfg(not(feature = "mujoco"))]
        "mujoco" => {
            let _ = mjcf;
            Err(without_mujoco())
        }
        other => bail!("--backend `{other}`: known backends are `rapier` and `mujoco`"),
    }
}

fn run_task(a: RunArgs) -> anyhow::Result<()> {
    let model = HandModel::load(&a.hand).with_context(|| format!("loading hand `{}`", a.hand))?;
    let mut config = TaskConfig::default();
    if let Some(path) = &a.randomization {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        config.randomization = dex_sim::Randomization::from_toml(&text)
            .with_context(|| format!("in {}", path.display()))?;
    }
    config.backend = a.backend.parse()?;
    config.mjcf = a.file.hand(&a.backend)?;
    let mut env = make_env(&a.task, model, config)?;
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x5EED);
    let dim = env.action_space().dim();
    env.reset(Some(a.seed))?;
    let (mut episodes, mut successes, mut drops) = (0usize, 0usize, 0usize);
    let (mut ret, mut len, mut ok) = (0.0, 0usize, false);
    let start = Instant::now();
    for _ in 0..a.steps {
        let action: Vec<f32> = match a.policy {
            PolicyKind::Random => (0..dim).map(|_| rng.random_range(-1.0..=1.0)).collect(),
            PolicyKind::Zero => vec![0.0; dim],
        };
        let s = env.step(&action)?;
        ret += s.reward;
        len += 1;
        ok |= s.info.success;
        if s.terminated || s.truncated {
            let dropped = s.info.get("dropped").unwrap_or(0.0) > 0.5;
            episodes += 1;
            successes += usize::from(ok);
            drops += usize::from(dropped);
            output(&format!(
                "episode {episodes} steps {len} return {ret:.3} success {ok} dropped {dropped}"
            ))?;
            env.reset(None)?;
            (ret, len, ok) = (0.0, 0, false);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let sim = env
        .simulator()
        .with_context(|| format!("task {} runs without a simulator", env.name()))?;
    output(&format!(
        "task {} hand {} steps {} episodes {episodes} successes {successes} drops {drops} \
         control_steps_per_s {:.0}",
        env.name(),
        sim.model().name(),
        a.steps,
        a.steps as f64 / secs
    ))?;
    output(&format!("digest {:016x}", sim.state_digest()))
}

fn save_gray(pixels: ndarray::Array2<u8>, path: &std::path::Path) -> anyhow::Result<()> {
    let (h, w) = pixels.dim();
    let img = image::GrayImage::from_raw(w as u32, h as u32, pixels.into_raw_vec_and_offset().0)
        .context("image buffer size")?;
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn render(a: RenderArgs) -> anyhow::Result<()> {
    if a.width == 0 || a.height == 0 || a.squint == 0 {
        bail!("--width, --height and --squint must be at least 1");
    }
    let mut sim = backend_scene(
        &a.hand,
        &a.object,
        SimConfig::default(),
        &a.backend,
        &a.file,
    )?;
    let hold = sim.joint_targets().to_vec();
    sim.set_joint_targets(&hold)?;
    // Let the object settle (about 100 physics steps).
    for _ in 0..100usize.div_ceil(sim.config().substeps.max(1)) {
        sim.step()?;
    }
    let target = match sim.objects().len() {
        0 | 2.. => rest_pose_on_palm(sim.model(), &sim.config().hand_pose, 0.0, 0.0)
            .translation
            .vector
            .into(),
        _ => sim.object_state(0)?.pose.translation.vector.into(),
    };
    let camera = Camera::overview(a.width * a.squint, a.height * a.squint, target)?;
    let start = Instant::now();
    let mut frame = sim.render_depth(&camera)?;
    if a.squint > 1 {
        frame = frame.squint(a.squint)?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    save_gray(frame.to_gray8(), &a.out)?;
    if let Some(path) = &a.gray {
        save_gray(frame.gray.clone(), path)?;
    }
    let (h, w) = frame.gray.dim();
    let hit = frame.depth.view().iter().filter(|d| **d > 0.0).count();
    let object_px = frame.segmentation.iter().filter(|l| **l > 0).count();
    output(&format!(
        "wrote {} ({w}×{h}) hit_pixels {hit} object_pixels {object_px} render_ms {ms:.2}",
        a.out.display()
    ))
}
