//! The KLT tracker on rendered sequences with known motion: it recovers the
//! motion, flags points that leave the image or get covered, lifts to 3D with
//! depth, and refuses bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_core::{CameraIntrinsics, DepthImage, PointTracks};
use dex_track::synthetic::{self, Photometric};
use dex_track::{
    Error, KltConfig, KltTracker, LiftedTracker, Observation, Tracker, track_sequence,
};
use nalgebra::{Isometry3, Point2, Vector2, Vector3};
use ndarray::{Array2, array};

const W: u32 = 320;
const H: u32 = 240;

fn queries(points: &[Point2<f64>]) -> Array2<f32> {
    Array2::from_shape_fn((points.len(), 2), |(i, c)| {
        if c == 0 {
            points[i].x as f32
        } else {
            points[i].y as f32
        }
    })
}

fn run(seq: &synthetic::Sequence, q: &[Point2<f64>]) -> PointTracks {
    let mut klt = KltTracker::new(KltConfig::default()).unwrap();
    let obs: Vec<_> = seq.frames.iter().map(Observation::image).collect();
    track_sequence(&mut klt, &obs, queries(q).view()).unwrap()
}

/// Median end-point error at the last frame over points still inside the image.
fn final_median_error(seq: &synthetic::Sequence, q: &[Point2<f64>], tracks: &PointTracks) -> f64 {
    let t = seq.frames.len() - 1;
    let mut errs: Vec<f64> = q
        .iter()
        .enumerate()
        .filter_map(|(i, &p)| {
            let (truth, inside) = seq.truth(t, p);
            inside.then(|| {
                let dx = f64::from(tracks.positions()[(t, i, 0)]) - truth.x;
                let dy = f64::from(tracks.positions()[(t, i, 1)]) - truth.y;
                (dx * dx + dy * dy).sqrt()
            })
        })
        .collect();
    errs.sort_by(f64::total_cmp);
    errs[errs.len() / 2]
}

#[test]
fn translation_is_recovered() {
    let seq = synthetic::render(
        W,
        H,
        &synthetic::translation_motions(30, 3.0, 1),
        Photometric::default(),
        7,
    );
    let q = synthetic::grid_queries(W, H, 8, 8, 0.6);
    let tracks = run(&seq, &q);
    let err = final_median_error(&seq, &q, &tracks);
    assert!(err < 0.1, "median end-point error after 30 frames {err} px");
    let visible = tracks.visible().row(29).iter().filter(|v| **v).count();
    assert!(visible >= 60, "only {visible} of 64 points still tracked");
}

#[test]
fn rotation_with_noise_and_brightness_change_is_recovered() {
    let motions = synthetic::rotation_motions(30, W, H, 1.0, Vector2::new(0.5, 0.3));
    let seq = synthetic::render(
        W,
        H,
        &motions,
        Photometric {
            noise_sigma: 2.0,
            brightness_change: 0.05,
        },
        3,
    );
    let q = synthetic::grid_queries(W, H, 8, 8, 0.5);
    let tracks = run(&seq, &q);
    let err = final_median_error(&seq, &q, &tracks);
    assert!(
        err < 1.5,
        "median end-point error after 30 frames of 1°/frame {err} px"
    );
}

#[test]
fn points_leaving_the_image_are_flagged() {
    // 6 px per frame to the right: the right-hand queries leave the image.
    let motions: Vec<_> = (0..12)
        .map(|k| synthetic::Motion2 {
            angle: 0.0,
            center: Point2::origin(),
            translation: Vector2::new(6.0 * k as f64, 0.0),
        })
        .collect();
    let seq = synthetic::render(W, H, &motions, Photometric::default(), 11);
    let q = vec![
        Point2::new(60.0, 120.0),
        Point2::new(300.0, 120.0),
        Point2::new(310.0, 60.0),
    ];
    let tracks = run(&seq, &q);
    assert!(
        tracks.visible()[(11, 0)],
        "the point that stays inside is lost"
    );
    assert!(
        !tracks.visible()[(11, 1)] && !tracks.visible()[(11, 2)],
        "points outside the image reported visible"
    );
}

#[test]
fn covered_points_are_flagged() {
    let seq = synthetic::render(
        W,
        H,
        &synthetic::translation_motions(8, 1.0, 4),
        Photometric::default(),
        5,
    );
    let mut frames = seq.frames.clone();
    // From frame 4 on, a flat grey card covers the left half of the image.
    for f in frames.iter_mut().skip(4) {
        for y in 0..H {
            for x in 0..W / 2 {
                f.put_pixel(x, y, image::Luma([128]));
            }
        }
    }
    let q = vec![Point2::new(80.0, 120.0), Point2::new(240.0, 120.0)];
    let mut klt = KltTracker::new(KltConfig::default()).unwrap();
    let obs: Vec<_> = frames.iter().map(Observation::image).collect();
    let tracks = track_sequence(&mut klt, &obs, queries(&q).view()).unwrap();
    assert!(tracks.visible()[(3, 0)] && tracks.visible()[(3, 1)]);
    assert!(
        !tracks.visible()[(5, 0)],
        "a point under the card is reported visible"
    );
    assert!(tracks.visible()[(7, 1)], "the uncovered point is lost");
}

#[test]
fn lifting_gives_world_points_and_drops_pixels_without_depth() {
    let seq = synthetic::render(
        W,
        H,
        &synthetic::translation_motions(5, 1.0, 9),
        Photometric::default(),
        2,
    );
    let k = CameraIntrinsics::try_new(W as usize, H as usize, 300.0, 300.0, 159.5, 119.5).unwrap();
    let mut depth = Array2::from_elem((H as usize, W as usize), 0.5f32);
    // No depth in the top-left corner.
    for y in 0..60 {
        for x in 0..80 {
            depth[(y, x)] = f32::NAN;
        }
    }
    let depth = DepthImage::new(depth);
    let camera = Isometry3::translation(0.0, 0.0, 1.0);
    let obs: Vec<_> = seq
        .frames
        .iter()
        .map(|f| Observation::image(f).with_depth(&depth, &k, camera))
        .collect();
    let q = vec![Point2::new(160.0, 120.0), Point2::new(40.0, 30.0)];
    let mut lifted = LiftedTracker::new(KltTracker::new(KltConfig::default()).unwrap()).unwrap();
    let tracks = track_sequence(&mut lifted, &obs, queries(&q).view()).unwrap();
    assert_eq!(tracks.dim(), 3);
    // Pixel (159.5, 119.5) at depth 0.5 is 0.5 m ahead; the camera sits 1 m up the world z.
    let p0 = tracks.positions();
    assert!((p0[(0, 0, 2)] - 1.5).abs() < 1e-5 && p0[(0, 0, 0)].abs() < 0.01);
    let (truth, _) = seq.truth(4, q[0]);
    let expected = camera * k.back_project(truth.x, truth.y, 0.5);
    let got = Vector3::new(p0[(4, 0, 0)], p0[(4, 0, 1)], p0[(4, 0, 2)]).cast::<f64>();
    assert!((got - expected.coords).norm() < 1e-3, "{got} vs {expected}");
    assert!(
        !tracks.visible()[(0, 1)] && !tracks.visible()[(4, 1)],
        "a pixel without depth is reported visible"
    );
}

#[test]
fn bad_input_is_an_error() {
    let a = image::GrayImage::new(64, 48);
    let b = image::GrayImage::new(32, 48);
    let mut klt = KltTracker::new(KltConfig::default()).unwrap();
    assert!(matches!(
        klt.track(&Observation::image(&a)),
        Err(Error::NotInitialized)
    ));
    assert!(matches!(
        klt.init(&Observation::image(&a), Array2::<f32>::zeros((0, 2)).view()),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        klt.init(&Observation::image(&a), array![[70.0f32, 5.0]].view()),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        klt.init(&Observation::image(&a), array![[f32::NAN, 5.0]].view()),
        Err(Error::InvalidInput { .. })
    ));
    klt.init(&Observation::image(&a), array![[10.0f32, 5.0]].view())
        .unwrap();
    assert!(matches!(
        klt.track(&Observation::image(&b)),
        Err(Error::FrameSize { .. })
    ));
    assert!(
        KltTracker::new(KltConfig {
            window: 20,
            ..KltConfig::default()
        })
        .is_err()
    );
    assert!(
        KltTracker::new(KltConfig {
            epsilon: 0.03,
            ..KltConfig::default()
        })
        .is_err()
    );
    let depthless = LiftedTracker::new(KltTracker::new(KltConfig::default()).unwrap());
    let mut lifted = depthless.unwrap();
    assert!(
        lifted
            .init(&Observation::image(&a), array![[10.0f32, 5.0]].view())
            .is_err()
    );
}

#[test]
fn redetect_replaces_lost_points_with_corners_inside_the_image() {
    let seq = synthetic::render(
        W,
        H,
        &synthetic::translation_motions(2, 1.0, 4),
        Photometric::default(),
        5,
    );
    let mut covered = seq.frames[1].clone();
    for y in 0..H {
        for x in 0..W / 2 {
            covered.put_pixel(x, y, image::Luma([128]));
        }
    }
    let q = vec![Point2::new(80.0, 120.0), Point2::new(240.0, 120.0)];
    let mut klt = KltTracker::new(KltConfig::default()).unwrap();
    klt.init(&Observation::image(&seq.frames[0]), queries(&q).view())
        .unwrap();
    let f = klt.track(&Observation::image(&covered)).unwrap();
    assert_eq!(f.visible, [false, true]);
    let replaced = klt.redetect(&covered, 10).unwrap();
    assert_eq!(replaced, [0]);
    // The replacement is a corner of the textured (right) half, inside the image,
    // at least 10 px from the surviving point.
    let f = klt.track(&Observation::image(&covered)).unwrap();
    assert!(f.visible[0]);
    let (x, y) = (f.positions[(0, 0)], f.positions[(0, 1)]);
    assert!(
        x >= (W / 2) as f32 && x < W as f32 && y >= 0.0 && y < H as f32,
        "({x}, {y})"
    );
    let d = ((x - f.positions[(1, 0)]).powi(2) + (y - f.positions[(1, 1)]).powi(2)).sqrt();
    assert!(d >= 10.0);
}
