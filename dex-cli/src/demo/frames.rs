//! Pictures of the demo's scene: stills of the hand rendered from an overview camera at
//! chosen ticks (with the reach targets marked), and the tracker's camera view with the
//! points it tracks drawn on it, composed into one strip (`frames.png`).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use dex_core::HandModel;
use dex_sim::{Camera, SimConfig, SimState};
use image::{Rgb, RgbImage, imageops};
use nalgebra::{Point3, Vector3};
use plotters::prelude::*;

/// A moment of the run to show from the overview camera.
pub struct Still {
    /// Seconds into the control loop.
    pub t: f64,
    /// What happens then (`reach`, `grasp closed`, ...).
    pub caption: String,
    /// The simulator's state.
    pub state: SimState,
    /// Reach targets to mark (world frame), if any.
    pub goals: Vec<Point3<f64>>,
}

/// A frame of the tracker's camera with the tracked points.
pub struct TrackedStill {
    /// Seconds into the control loop.
    pub t: f64,
    /// The grey image the tracker saw.
    pub image: image::GrayImage,
    /// Tracked pixel positions and whether the tracker sees each point.
    pub points: Vec<([f32; 2], bool)>,
}

/// Width and height of one tile of the strip.
const TILE: (u32, u32) = (320, 240);

const TARGET: Rgb<u8> = Rgb([214, 39, 40]);
const TRACKED: Rgb<u8> = Rgb([44, 200, 44]);

fn to_rgb(gray: &image::GrayImage) -> RgbImage {
    RgbImage::from_fn(gray.width(), gray.height(), |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    })
}

/// A filled square of half-size `r` at pixel `(x, y)`, clipped to the image.
fn dot(img: &mut RgbImage, x: f64, y: f64, r: i64, color: Rgb<u8>) {
    if !(x.is_finite() && y.is_finite()) {
        return;
    }
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    for py in cy - r..=cy + r {
        for px in cx - r..=cx + r {
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, color);
            }
        }
    }
}

/// Renders each still from an overview camera on a fresh copy of the demo's scene.
fn render_stills(stills: &[Still], config: &SimConfig) -> Result<Vec<RgbImage>> {
    let mut scene = crate::hw::leap_sim_scene("cube", config.clone(), None)?;
    let model = HandModel::leap_right();
    let hand = scene.config().hand_pose;
    // Above the palm's centre (where the cube rests), from the wrist side, higher and
    // further back than the tracker's camera, so the whole hand is in view.
    let target = dex_sim::rest_pose_on_palm(&model, &hand, 0.025, 0.0)
        .translation
        .vector;
    let target = Point3::from(target);
    let k = dex_core::CameraIntrinsics::from_fov_y(
        TILE.0 as usize,
        TILE.1 as usize,
        50f64.to_radians(),
    )?;
    let camera = Camera::look_at(
        k,
        target + Vector3::new(-0.26, -0.13, 0.2),
        target,
        Vector3::z(),
    )?;
    stills
        .iter()
        .map(|s| {
            scene.restore_state(&s.state)?;
            let frame = scene.render_depth(&camera)?;
            let (h, w) = frame.gray.dim();
            let gray = image::GrayImage::from_raw(
                w as u32,
                h as u32,
                frame.gray.iter().copied().collect(),
            )
            .ok_or_else(|| anyhow!("the rendered image has the wrong size"))?;
            let mut img = to_rgb(&gray);
            for g in &s.goals {
                let local = camera.pose.inverse_transform_point(g);
                if let Some((u, v)) = camera.intrinsics.project(&local) {
                    dot(&mut img, u, v, 3, TARGET);
                }
            }
            Ok(img)
        })
        .collect()
}

fn tracked_tile(t: &TrackedStill) -> RgbImage {
    let mut img = to_rgb(&t.image);
    for ([u, v], seen) in &t.points {
        if *seen {
            dot(&mut img, f64::from(*u), f64::from(*v), 2, TRACKED);
        }
    }
    imageops::resize(&img, TILE.0, TILE.1, imageops::FilterType::Triangle)
}

/// Writes `frames.png`: the overview stills in the top row, the tracker's view in the
/// bottom row, each tile captioned.
pub fn write_frames(
    path: &Path,
    stills: &[Still],
    tracked: &[TrackedStill],
    config: &SimConfig,
) -> Result<()> {
    let top = render_stills(stills, config)?;
    let mut tiles: Vec<(RgbImage, String)> = top
        .into_iter()
        .zip(stills)
        .map(|(img, s)| (img, format!("{:.1} s  {}", s.t, s.caption)))
        .collect();
    let columns = tiles.len().max(tracked.len()).max(1) as u32;
    let rows = if tracked.is_empty() { 1 } else { 2 };
    for (i, t) in tracked.iter().enumerate() {
        let what = if i == 0 {
            "points to track"
        } else {
            "tracked points"
        };
        tiles.push((tracked_tile(t), format!("{:.1} s  {what}", t.t)));
    }
    let (w, h) = (columns * TILE.0, rows * TILE.1);
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([24, 24, 24]));
    for (i, (img, _)) in tiles.iter().enumerate() {
        let i = i as u32;
        let (row, col) = if i < stills.len() as u32 {
            (0, i)
        } else {
            (1, i - stills.len() as u32)
        };
        imageops::overlay(
            &mut canvas,
            img,
            i64::from(col * TILE.0),
            i64::from(row * TILE.1),
        );
    }
    crate::plot::register_font()?;
    {
        let root = BitMapBackend::with_buffer(canvas.as_mut(), (w, h)).into_drawing_area();
        let style = ("sans-serif", 13).into_font().color(&BLACK);
        for (i, (_, caption)) in tiles.iter().enumerate() {
            let i = i as u32;
            let (row, col) = if i < stills.len() as u32 {
                (0, i)
            } else {
                (1, i - stills.len() as u32)
            };
            let (x, y) = ((col * TILE.0 + 6) as i32, (row * TILE.1 + 4) as i32);
            root.draw(&Rectangle::new(
                [
                    (x - 3, y - 1),
                    (x + 7 * caption.chars().count() as i32 + 6, y + 15),
                ],
                WHITE.mix(0.8).filled(),
            ))
            .map_err(|e| anyhow!("drawing a caption: {e}"))?;
            root.draw_text(caption, &style, (x, y))
                .map_err(|e| anyhow!("drawing a caption: {e}"))?;
        }
        root.present()
            .map_err(|e| anyhow!("drawing the frames: {e}"))?;
    }
    canvas
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}
