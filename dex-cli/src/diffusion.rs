//! `dex diffusion`: DexGen's dataset, training, evaluation and guidance sweep.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dex_core::HandModel;
use dex_diffusion::dataset::DataReader;
use dex_diffusion::{
    CollectConfig, CommandReference, CommandSpec, CommandSteps, DexGen, EvalConfig, EvalReport,
    FitConfig, TaskSettings, collect, evaluate, fit,
};

use crate::plot::{Panel, Series, write_png};
use crate::progress::bar;
use crate::stdout::output;

/// `dex diffusion ...`.
#[derive(Debug, Subcommand)]
pub enum DiffusionCommand {
    /// Roll the scripted grasp-to-grasp expert out and write DexGen's dataset.
    Collect(CollectArgs),
    /// Train the denoiser and the inverse dynamics model on a dataset.
    Train(TrainArgs),
    /// Run a command source with (or without) the DexGen controller; ends with
    /// `hold_s <mean> goals <mean per episode> drops <fraction>`.
    Eval(EvalArgs),
    /// Evaluate a command source over guidance strengths; CSV and PNG.
    Sweep(SweepArgs),
}

/// Arguments of `dex diffusion collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Built-in hand (`leap`).
    #[arg(long, default_value = "leap")]
    hand: String,
    /// Episodes to roll out.
    #[arg(long)]
    episodes: usize,
    /// Seed of objects, resets and the expert.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (must not hold a dataset yet).
    #[arg(long)]
    out: PathBuf,
    /// Environments run at once (one thread each).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// A TOML collection config (see --print-config for every key and its default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set task.goal_timeout_steps=0` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config (with this command's episodes, seed and workers) and exit.
    #[arg(long)]
    print_config: bool,
}

/// Arguments of `dex diffusion train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A dataset written by `dex diffusion collect`.
    #[arg(long)]
    data: PathBuf,
    /// Wall-clock budget (minutes).
    #[arg(long)]
    minutes: f64,
    /// Seed of the weights and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory: checkpoint, config.toml, metrics.csv, curve.png.
    #[arg(long)]
    out: PathBuf,
    /// A TOML config (see --print-config for every key and its default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config key, e.g. `--set model.denoiser.hidden=768` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the full config and exit.
    #[arg(long)]
    print_config: bool,
}

/// What every evaluation shares.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A checkpoint of `dex diffusion train`, or `builtin:dexgen-leap` (the default).
    #[arg(long)]
    checkpoint: Option<String>,
    /// The command source: `expert`, `noisy:A` (+U(−A, A)) or `slow:A` (×U(0, A)).
    #[arg(long)]
    command: String,
    /// Episodes.
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Seed of objects, resets, noise and sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Environments stepped together.
    #[arg(long, default_value_t = 4)]
    envs: usize,
    /// The scripted expert's largest target change per step (rad).
    #[arg(long, default_value_t = 0.03)]
    expert_step: f64,
    /// What a command's keypoint offset is measured from: the targets in force
    /// (`targets`) or the measured joints (`measured`).
    #[arg(long, default_value = "targets", value_parser = ["targets", "measured"])]
    command_from: String,
    /// How a command spreads over the motion's future steps: step i pulled to i times
    /// it (`repeat`) or each to the same offset (`hold`, DexGen's Dist as written).
    #[arg(long, default_value = "repeat", value_parser = ["repeat", "hold"])]
    command_steps: String,
    /// Radians of target change per unit of the command source's actions (the task's
    /// relative action scale; the noise of `noisy:A` is in these units).
    #[arg(long, default_value_t = 0.4)]
    action_scale: f64,
    /// Weights of the denoiser's DDIM steps: `f32`, or `f16` (half the bytes a step
    /// streams; conditioning and arithmetic stay in f32).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    precision: String,
}

/// Arguments of `dex diffusion eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Guidance strength α (default: the checkpoint's recommended one).
    #[arg(long)]
    guidance: Option<f64>,
    /// Run the raw command source, without the controller.
    #[arg(long)]
    no_controller: bool,
}

/// Arguments of `dex diffusion sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Guidance strengths, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    guidance: Vec<f64>,
    /// Output directory: sweep.csv, sweep.png.
    #[arg(long)]
    out: PathBuf,
    /// Store the strength with the most goals per episode (then the longest hold) in
    /// the checkpoint as its recommended one.
    #[arg(long)]
    recommend: bool,
}

/// Runs `dex diffusion ...`.
pub fn run(cmd: DiffusionCommand) -> Result<()> {
    match cmd {
        DiffusionCommand::Collect(a) => run_collect(a),
        DiffusionCommand::Train(a) => run_train(a),
        DiffusionCommand::Eval(a) => run_eval(a),
        DiffusionCommand::Sweep(a) => run_sweep(a),
    }
}

fn load_hand(name: &str) -> Result<HandModel> {
    HandModel::load(name).with_context(|| format!("loading hand `{name}`"))
}

fn run_collect(a: CollectArgs) -> Result<()> {
    let hand = load_hand(&a.hand)?;
    let config = CollectConfig {
        episodes: a.episodes,
        seed: a.seed,
        workers: a.workers,
        ..dex_policy::run::layered_config(CollectConfig::default(), a.config.as_deref(), &a.sets)?
    };
    if a.print_config {
        return output(&toml::to_string_pretty(&config)?);
    }
    let b = bar(
        a.episodes as u64,
        "{elapsed_precise} [{bar:30.cyan/blue}] episode {pos}/{len} (eta {eta})",
    );
    let report = collect(&hand, &config, &a.out, &mut |done| {
        b.set_position(done as u64)
    })?;
    b.finish_and_clear();
    output(&format!(
        "dataset in {}: {} episodes, {} rows kept in {} chunks; expert: {:.2} goals per episode, {:.1}% drops, mean hold {:.1} s; {} objects skipped (too few stable grasps)",
        a.out.display(),
        report.episodes,
        report.manifest.rows(),
        report.manifest.chunks.len(),
        report.goals as f64 / report.episodes.max(1) as f64,
        100.0 * report.drops as f64 / report.episodes.max(1) as f64,
        report.mean_hold_s,
        report.skipped_objects
    ))
}

fn run_train(a: TrainArgs) -> Result<()> {
    let config: FitConfig =
        dex_policy::run::layered_config(FitConfig::default(), a.config.as_deref(), &a.sets)?;
    let config_text = toml::to_string_pretty(&config)?;
    if a.print_config {
        return output(&config_text);
    }
    if !(a.minutes.is_finite() && a.minutes > 0.0) {
        bail!("--minutes must be positive, got {}", a.minutes);
    }
    let reader = DataReader::open(&a.data)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(a.out.join("config.toml"), &config_text)
        .with_context(|| format!("writing {}", a.out.join("config.toml").display()))?;
    let budget = Duration::from_secs_f64(a.minutes * 60.0);
    let b = bar(
        budget.as_secs().max(1),
        "{elapsed_precise} [{bar:30.cyan/blue}] {msg}",
    );
    let report = fit(&reader, &config, a.seed, budget, &a.out, &mut |e| {
        b.set_position(e.seconds as u64);
        b.set_message(format!(
            "step {} diffusion {:.4} idm {:.4}",
            e.step, e.diffusion_loss, e.idm_mse
        ));
    })?;
    b.finish_and_clear();
    write_curve(&a.out)?;
    let validation = match (report.validation_diffusion_loss, report.validation_idm_mse) {
        (Some(d), Some(i)) => format!("; held out: diffusion {d:.4}, idm {i:.4}"),
        _ => String::new(),
    };
    output(&format!(
        "checkpoint in {}: {} steps in {:.1} min ({} samples); diffusion loss {:.4}, idm mse {:.4} (normalised){validation}",
        a.out.display(),
        report.steps,
        report.seconds / 60.0,
        report.samples_seen,
        report.diffusion_loss,
        report.idm_mse
    ))
}

/// `curve.png` from `metrics.csv`.
fn write_curve(dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(dir.join("metrics.csv"))?;
    let mut diffusion = Vec::new();
    let mut idm = Vec::new();
    for line in text.lines().skip(1) {
        let v: Vec<f64> = line.split(',').filter_map(|x| x.parse().ok()).collect();
        if let [step, _, d, i] = v[..] {
            diffusion.push((step, d));
            idm.push((step, i));
        }
    }
    let panel = |title: &str, points| Panel {
        title: title.into(),
        x_label: "gradient step".into(),
        y_label: "loss (normalised)".into(),
        series: vec![Series {
            name: title.into(),
            points,
        }],
    };
    write_png(
        &dir.join("curve.png"),
        &[
            panel("denoiser ε-MSE", diffusion),
            panel("inverse dynamics MSE", idm),
        ],
        800,
        300,
    )
}

/// The checkpoint named on the command line: a directory, or the shipped one.
enum Checkpoint {
    Builtin,
    Dir(PathBuf),
}

impl Checkpoint {
    fn parse(spec: Option<&str>) -> Self {
        match spec {
            None | Some("builtin:dexgen-leap") => Self::Builtin,
            Some(path) => Self::Dir(PathBuf::from(path)),
        }
    }

    fn load(&self) -> Result<DexGen> {
        Ok(match self {
            Self::Builtin => DexGen::builtin()?,
            Self::Dir(dir) => DexGen::load(dir)?,
        })
    }

    fn name(&self) -> String {
        match self {
            Self::Builtin => "builtin:dexgen-leap".into(),
            Self::Dir(dir) => dir.display().to_string(),
        }
    }
}

fn eval_config(s: &SourceArgs) -> Result<EvalConfig> {
    let command: CommandSpec = s.command.parse()?;
    Ok(EvalConfig {
        command,
        episodes: s.episodes,
        envs: s.envs,
        seed: s.seed,
        expert_step: s.expert_step,
        reference: if s.command_from == "measured" {
            CommandReference::Measured
        } else {
            CommandReference::Targets
        },
        command_steps: if s.command_steps == "repeat" {
            CommandSteps::Repeat
        } else {
            CommandSteps::Hold
        },
        task: TaskSettings {
            relative_scale: s.action_scale,
            ..TaskSettings::default()
        },
    })
}

fn run_one(
    hand: &HandModel,
    config: &EvalConfig,
    model: Option<(DexGen, f64)>,
    label: &str,
) -> Result<EvalReport> {
    let b = bar(
        config.episodes as u64,
        "{elapsed_precise} [{bar:30.cyan/blue}] {msg} episode {pos}/{len}",
    );
    b.set_message(label.to_string());
    let report = evaluate(hand, config, model, &mut |n| b.set_position(n as u64))?;
    b.finish_and_clear();
    Ok(report)
}

fn run_eval(a: EvalArgs) -> Result<()> {
    let config = eval_config(&a.source)?;
    let hand = load_hand("leap")?;
    let model = if a.no_controller {
        None
    } else {
        let checkpoint = Checkpoint::parse(a.source.checkpoint.as_deref());
        let mut model = checkpoint.load()?;
        model.set_precision(a.source.precision.parse()?)?;
        let guidance = match (a.guidance, model.file().recommended_guidance) {
            (Some(g), _) | (None, Some(g)) => g,
            (None, None) => bail!(
                "{} recommends no guidance strength: give --guidance",
                checkpoint.name()
            ),
        };
        Some((model, guidance))
    };
    let label = match &model {
        Some((_, g)) => format!("{} + DexGen α={g}", config.command),
        None => format!("{} raw", config.command),
    };
    let report = run_one(&hand, &config, model, &label)?;
    output(&format!(
        "{label}: {} episodes, hold capped at {:.0} s\n{}",
        report.episodes.len(),
        report.cap_s,
        report.summary_line()
    ))
}

fn run_sweep(a: SweepArgs) -> Result<()> {
    let config = eval_config(&a.source)?;
    if let Some(g) = a.guidance.iter().find(|g| !(g.is_finite() && **g >= 0.0)) {
        bail!("--guidance: {g} is not a finite strength ≥ 0");
    }
    let hand = load_hand("leap")?;
    let checkpoint = Checkpoint::parse(a.source.checkpoint.as_deref());
    if a.recommend && matches!(checkpoint, Checkpoint::Builtin) {
        bail!("--recommend writes into a checkpoint directory: give --checkpoint DIR");
    }
    // Fail on a bad checkpoint before the long raw run.
    checkpoint.load()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let raw = run_one(&hand, &config, None, &format!("{} raw", config.command))?;
    let mut rows = Vec::new();
    for &g in &a.guidance {
        let mut model = checkpoint.load()?;
        model.set_precision(a.source.precision.parse()?)?;
        let r = run_one(
            &hand,
            &config,
            Some((model, g)),
            &format!("{} α={g}", config.command),
        )?;
        eprintln!("α = {g}: {}", r.summary_line());
        rows.push((g, r));
    }
    let csv_path = a.out.join("sweep.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .with_context(|| format!("creating {}", csv_path.display()))?;
    writeln!(csv, "command,guidance,hold_s,goals,drops,episodes,seed")?;
    let line = |csv: &mut std::fs::File, g: &str, r: &EvalReport| -> Result<()> {
        writeln!(
            csv,
            "{},{g},{:.3},{:.3},{:.4},{},{}",
            config.command,
            r.hold_s(),
            r.goals(),
            r.drops(),
            r.episodes.len(),
            config.seed
        )?;
        Ok(())
    };
    line(&mut csv, "raw", &raw)?;
    for (g, r) in &rows {
        line(&mut csv, &g.to_string(), r)?;
    }
    let x = |g: f64| (1.0 + g).log10();
    let curve = |f: &dyn Fn(&EvalReport) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|(g, r)| (x(*g), f(r))).collect()
    };
    let flat = |v: f64| -> Vec<(f64, f64)> {
        let xs: Vec<f64> = rows.iter().map(|(g, _)| x(*g)).collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        vec![(lo, v), (hi, v)]
    };
    let panel = |title: &str, y: &str, f: &dyn Fn(&EvalReport) -> f64| Panel {
        title: format!("{title}, {}", config.command),
        x_label: "log10(1 + guidance α)".into(),
        y_label: y.into(),
        series: vec![
            Series {
                name: "DexGen".into(),
                points: curve(f),
            },
            Series {
                name: "raw source".into(),
                points: flat(f(&raw)),
            },
        ],
    };
    write_png(
        &a.out.join("sweep.png"),
        &[
            panel("hold time", "s before a drop (capped)", &|r| r.hold_s()),
            panel("goals", "goals per episode", &|r| r.goals()),
        ],
        800,
        320,
    )?;
    let best = rows
        .iter()
        .max_by(|a, b| {
            a.1.goals()
                .total_cmp(&b.1.goals())
                .then(a.1.hold_s().total_cmp(&b.1.hold_s()))
        })
        .map(|(g, _)| *g);
    if let (true, Some(g), Checkpoint::Dir(dir)) = (a.recommend, best, &checkpoint) {
        DexGen::recommend_guidance(dir, g)?;
    }
    let mut text = format!("raw: {}\n", raw.summary_line());
    for (g, r) in &rows {
        text.push_str(&format!("α = {g}: {}\n", r.summary_line()));
    }
    text.push_str(&format!(
        "sweep.csv and sweep.png in {}; most goals at α = {}",
        a.out.display(),
        best.map_or("-".into(), |g| g.to_string())
    ));
    output(&text)
}
