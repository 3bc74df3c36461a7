//! `dex ndm`: DexNDM's joint dynamics models — train and score them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dex_ndm::{Dataset, ModelKind, Phase, TrainSettings, accuracy, load_model, train_model};

use crate::stdout::output;

/// `dex ndm ...`.
#[derive(Debug, Subcommand)]
pub enum NdmCommand {
    /// Fit a dynamics model (joint-wise, whole-hand or first-order) to a hand's data,
    /// pre-trained on simulated data when given.
    Train(TrainArgs),
    /// One-step joint-position error of a model on a dataset; ends with
    /// `rmse_rad <x> p95_rad <y>`.
    Eval(EvalArgs),
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
        NdmCommand::Train(a) => run_train(a),
        NdmCommand::Eval(a) => run_eval(a),
    }
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
