//! `dex track`: point tracking on image files and rigid registration of point clouds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dex_track::synthetic::{self, Photometric};
use dex_track::{IcpConfig, IcpMethod, KltConfig, KltTracker, Observation, Tracker};
use nalgebra::{Isometry3, Point2, Point3, Vector2, Vector3};
use ndarray::Array2;
use serde_json::json;

/// `dex track ...`
#[derive(Debug, Subcommand)]
pub enum TrackCommand {
    /// Track points through grey PNG frames with pyramidal Lucas–Kanade.
    Klt(KltArgs),
    /// Register two point clouds with ICP; prints one JSON object.
    Icp(IcpArgs),
    /// Write a synthetic test case with ground truth (frames or clouds).
    Synth(SynthArgs),
}

/// Arguments of `dex track klt`.
#[derive(Debug, Args)]
pub struct KltArgs {
    /// Folder of 8-bit grey PNG frames, taken in file-name order.
    #[arg(long)]
    frames: PathBuf,
    /// CSV of `x,y` queries (pixels in the first frame), one per line.
    #[arg(long)]
    queries: PathBuf,
    /// Output CSV: `frame,point,x,y,visible`.
    #[arg(long)]
    out: PathBuf,
    /// Window side (pixels, odd).
    #[arg(long, default_value_t = 21)]
    win: usize,
    /// Pyramid levels above full resolution.
    #[arg(long, default_value_t = 3)]
    levels: usize,
    /// Most iterations per level.
    #[arg(long, default_value_t = 30)]
    iters: usize,
    /// Convergence threshold (pixels; fixed at 0.01 by the tracker).
    #[arg(long, default_value_t = 0.01)]
    eps: f32,
    /// Skip the forward–backward check.
    #[arg(long)]
    no_fb: bool,
}

/// ICP methods on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Method {
    PointToPlane,
    PointToPoint,
}

/// Arguments of `dex track icp`.
#[derive(Debug, Args)]
pub struct IcpArgs {
    /// Source cloud (`x y z` per line, metres).
    #[arg(long)]
    source: PathBuf,
    /// Target cloud.
    #[arg(long)]
    target: PathBuf,
    /// Misfit measure.
    #[arg(long, value_enum, default_value = "point-to-plane")]
    method: Method,
    /// Correspondence distance limit (m).
    #[arg(long, default_value_t = 0.05)]
    max_dist: f64,
    /// Most iterations.
    #[arg(long, default_value_t = 50)]
    iters: usize,
}

/// Synthetic cases.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Case {
    /// 640 × 480 texture, random translation up to 3 px/frame, 30 frames, 256 grid queries.
    Translation,
    /// 1°/frame rotation about the centre plus 1 px/frame drift.
    Rotation,
    /// Rotation plus Gaussian noise σ = 2 and a 5% brightness change.
    Noisy,
    /// 5,000 points on a box and a copy moved by 20° and 2 cm.
    Box,
    /// 5,000 points on a mug-like shape and a copy moved by 20° and 2 cm.
    Mug,
}

/// Arguments of `dex track synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Which case.
    #[arg(long, value_enum)]
    case: Case,
    /// Output folder (created).
    #[arg(long)]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `dex track ...`.
pub fn run(cmd: TrackCommand) -> Result<()> {
    match cmd {
        TrackCommand::Klt(a) => klt(a),
        TrackCommand::Icp(a) => icp(a),
        TrackCommand::Synth(a) => synth(a),
    }
}

fn read_queries(path: &Path) -> Result<Array2<f32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || (n == 0 && line.starts_with(|c: char| c.is_alphabetic()))
        {
            continue;
        }
        let (x, y) = line
            .split_once(',')
            .with_context(|| format!("{}:{}: expected `x,y`", path.display(), n + 1))?;
        let parse = |s: &str| -> Result<f32> {
            s.trim()
                .parse()
                .with_context(|| format!("{}:{}: `{s}` is not a number", path.display(), n + 1))
        };
        values.push(parse(x)?);
        values.push(parse(y)?);
    }
    if values.is_empty() {
        bail!("{}: no queries", path.display());
    }
    Ok(Array2::from_shape_vec((values.len() / 2, 2), values)?)
}

fn read_frames(dir: &Path) -> Result<Vec<image::GrayImage>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no PNG frames in {}", dir.display());
    }
    paths
        .iter()
        .map(|p| {
            let img = image::open(p).with_context(|| format!("cannot decode {}", p.display()))?;
            match img {
                image::DynamicImage::ImageLuma8(g) => Ok(g),
                other => bail!("{} is {:?}, not 8-bit grey", p.display(), other.color()),
            }
        })
        .collect()
}

fn klt(a: KltArgs) -> Result<()> {
    let frames = read_frames(&a.frames)?;
    let queries = read_queries(&a.queries)?;
    let config = KltConfig {
        window: a.win,
        levels: a.levels,
        iterations: a.iters,
        epsilon: a.eps,
        fb_threshold: if a.no_fb {
            None
        } else {
            KltConfig::default().fb_threshold
        },
        ..KltConfig::default()
    };
    let mut tracker = KltTracker::new(config)?;
    let mut csv = String::from("frame,point,x,y,visible\n");
    let mut push = |f: usize, frame: &dex_track::TrackFrame| {
        for (i, v) in frame.visible.iter().enumerate() {
            csv.push_str(&format!(
                "{f},{i},{:.4},{:.4},{}\n",
                frame.positions[(i, 0)],
                frame.positions[(i, 1)],
                u8::from(*v)
            ));
        }
    };
    let first = tracker.init(&Observation::image(&frames[0]), queries.view())?;
    push(0, &first);
    let mut times = Vec::with_capacity(frames.len());
    for (f, img) in frames.iter().enumerate().skip(1) {
        let start = Instant::now();
        let frame = tracker.track(&Observation::image(img))?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        push(f, &frame);
    }
    std::fs::write(&a.out, csv).with_context(|| format!("cannot write {}", a.out.display()))?;
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    crate::stdout::output(&format!(
        "{} frames, {} points -> {}\nms_per_frame {median:.3}",
        frames.len(),
        queries.nrows(),
        a.out.display()
    ))
}

fn read_xyz(path: &Path) -> Result<Vec<Point3<f64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|t| t.parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}:{}: not numbers", path.display(), n + 1))?;
        if v.len() < 3 {
            bail!("{}:{}: expected `x y z`", path.display(), n + 1);
        }
        out.push(Point3::new(v[0], v[1], v[2]));
    }
    Ok(out)
}

fn icp(a: IcpArgs) -> Result<()> {
    let source = read_xyz(&a.source)?;
    let target = read_xyz(&a.target)?;
    let config = IcpConfig {
        method: match a.method {
            Method::PointToPlane => IcpMethod::PointToPlane,
            Method::PointToPoint => IcpMethod::PointToPoint,
        },
        max_correspondence_distance: a.max_dist,
        max_iterations: a.iters,
        ..IcpConfig::default()
    };
    let start = Instant::now();
    let r = dex_track::icp(&source, &target, &Isometry3::identity(), &config)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let rot = rotation_rows(&r.transform);
    let t = r.transform.translation.vector;
    crate::stdout::output(&serde_json::to_string(&json!({
        "rotation": rot,
        "translation": [t.x, t.y, t.z],
        "iterations": r.iterations,
        "rmse": r.rmse,
        "fitness": r.fitness,
        "converged": r.converged,
        "ms": ms,
    }))?)
}

/// The rotation of a pose as 9 numbers, row by row.
fn rotation_rows(pose: &Isometry3<f64>) -> Vec<f64> {
    let m = pose.rotation.to_rotation_matrix();
    m.matrix().transpose().iter().copied().collect()
}

fn write_xyz(path: &Path, points: &[Point3<f64>]) -> Result<()> {
    let text: String = points
        .iter()
        .map(|p| format!("{:.7} {:.7} {:.7}\n", p.x, p.y, p.z))
        .collect();
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn synth(a: SynthArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let (w, h) = (640, 480);
    let images = |motions: Vec<synthetic::Motion2>, photometric: Photometric| -> Result<()> {
        let seq = synthetic::render(w, h, &motions, photometric, a.seed);
        let frames = a.out.join("frames");
        std::fs::create_dir_all(&frames)?;
        for (t, f) in seq.frames.iter().enumerate() {
            f.save(frames.join(format!("{t:04}.png")))?;
        }
        let queries = synthetic::grid_queries(w, h, 16, 16, 0.7);
        let q: String = queries
            .iter()
            .map(|p| format!("{},{}\n", p.x, p.y))
            .collect();
        std::fs::write(a.out.join("queries.csv"), q)?;
        let mut truth = String::from("frame,point,x,y,visible\n");
        for t in 0..seq.frames.len() {
            for (i, &p) in queries.iter().enumerate() {
                let (g, inside) = seq.truth(t, Point2::new(p.x, p.y));
                truth.push_str(&format!(
                    "{t},{i},{:.4},{:.4},{}\n",
                    g.x,
                    g.y,
                    u8::from(inside)
                ));
            }
        }
        std::fs::write(a.out.join("truth.csv"), truth)?;
        crate::stdout::output(&format!(
            "wrote {} frames, queries.csv and truth.csv to {}",
            seq.frames.len(),
            a.out.display()
        ))
    };
    let rotation = || synthetic::rotation_motions(30, w, h, 1.0, Vector2::new(1.0, 0.0));
    match a.case {
        Case::Translation => images(
            synthetic::translation_motions(30, 3.0, a.seed),
            Photometric::default(),
        ),
        Case::Rotation => images(rotation(), Photometric::default()),
        Case::Noisy => images(
            rotation(),
            Photometric {
                noise_sigma: 2.0,
                brightness_change: 0.05,
            },
        ),
        Case::Box | Case::Mug => {
            let model = match a.case {
                Case::Box => synthetic::box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, a.seed),
                _ => synthetic::mug_surface(0.04, 0.1, 5000, a.seed),
            };
            let scan = match a.case {
                Case::Box => {
                    synthetic::box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, a.seed + 1)
                }
                _ => synthetic::mug_surface(0.04, 0.1, 5000, a.seed + 1),
            };
            let truth = synthetic::random_transform(20f64.to_radians(), 0.02, a.seed + 2);
            let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
            write_xyz(&a.out.join("source.xyz"), &source)?;
            write_xyz(&a.out.join("target.xyz"), &scan)?;
            let rot = rotation_rows(&truth);
            let t = truth.translation.vector;
            std::fs::write(
                a.out.join("truth.json"),
                serde_json::to_string(&json!({ "rotation": rot, "translation": [t.x, t.y, t.z] }))?,
            )?;
            crate::stdout::output(&format!(
                "wrote source.xyz, target.xyz and truth.json to {}",
                a.out.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rotation_rows;
    use nalgebra::{Isometry3, Vector3};

    #[test]
    fn rotations_are_printed_row_major() {
        let quarter_turn_z = Isometry3::new(
            Vector3::zeros(),
            Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let rows = rotation_rows(&quarter_turn_z);
        let expected = [0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        for (got, want) in rows.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{rows:?}");
        }
    }
}
