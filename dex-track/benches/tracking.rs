//! Criterion benches of dex-track on the synthetic workloads of the peer
//! comparison: KLT on 640 × 480 frames with 256 points (window 21, 3 levels),
//! point-to-plane ICP on 5,000-point clouds from a 20° + 2 cm offset, and
//! TAP-Vid metrics.
//!
//! Run with `cargo bench -p dex-track --bench tracking`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dex_track::synthetic::{self, Photometric, box_surface, mug_surface, random_transform};
use dex_track::{IcpConfig, IcpTarget, KltConfig, KltTracker, Observation, Tracker};
use nalgebra::{Isometry3, Vector3};
use ndarray::Array2;

fn klt(c: &mut Criterion) {
    let (w, h) = (640, 480);
    let seq = synthetic::render(
        w,
        h,
        &synthetic::translation_motions(2, 3.0, 1),
        Photometric::default(),
        7,
    );
    let q = synthetic::grid_queries(w, h, 16, 16, 0.8);
    let queries = Array2::from_shape_fn((q.len(), 2), |(i, c)| {
        if c == 0 { q[i].x as f32 } else { q[i].y as f32 }
    });
    let mut tracker = KltTracker::new(KltConfig::default()).unwrap();
    c.bench_function("klt/640x480/256_points/one_frame", |b| {
        b.iter(|| {
            tracker
                .init(&Observation::image(&seq.frames[0]), queries.view())
                .unwrap();
            black_box(tracker.track(&Observation::image(&seq.frames[1])).unwrap());
        })
    });
    c.bench_function("klt/640x480/init_only", |b| {
        b.iter(|| {
            black_box(
                tracker
                    .init(&Observation::image(&seq.frames[0]), queries.view())
                    .unwrap(),
            )
        })
    });
}

fn icp(c: &mut Criterion) {
    for (name, model) in [
        ("box", box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, 1)),
        ("mug", mug_surface(0.04, 0.1, 5000, 2)),
    ] {
        let truth = random_transform(20f64.to_radians(), 0.02, 3);
        let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
        let config = IcpConfig::default();
        c.bench_function(
            &format!("icp/point_to_plane/5000/{name}/with_target_setup"),
            |b| {
                b.iter(|| {
                    let target =
                        IcpTarget::new(black_box(&model), config.normal_neighbours).unwrap();
                    black_box(
                        target
                            .register(&source, &Isometry3::identity(), &config)
                            .unwrap(),
                    )
                })
            },
        );
        let target = IcpTarget::new(&model, config.normal_neighbours).unwrap();
        c.bench_function(
            &format!("icp/point_to_plane/5000/{name}/register_only"),
            |b| {
                b.iter(|| {
                    black_box(
                        target
                            .register(black_box(&source), &Isometry3::identity(), &config)
                            .unwrap(),
                    )
                })
            },
        );
    }
}

criterion_group!(benches, klt, icp);
criterion_main!(benches);
