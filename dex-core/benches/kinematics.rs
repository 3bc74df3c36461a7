//! Criterion benches of dex-core's kinematics, side by side with the `k` crate
//! (openrr/k) on the same hand: single FK, batched FK of 4,096 configurations,
//! the fingertip Jacobian, and Kabsch on 5,000 correspondences.
//!
//! Run with `cargo bench -p dex-core --bench kinematics`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dex_core::{BuiltinHand, HandModel, geometry::kabsch};
use nalgebra::{Isometry3, Matrix6xX, Point3, Vector3};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 4096;

fn random_configurations(model: &HandModel, n: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let limits = model.joint_limits();
    Array2::from_shape_fn((n, model.dof()), |(_, d)| {
        rng.random_range(limits[d].lower..=limits[d].upper)
    })
}

fn k_chain(urdf: &str) -> k::Chain<f64> {
    let path = std::env::temp_dir().join(format!("dex-bench-{}.urdf", std::process::id()));
    std::fs::write(&path, urdf).expect("write temp URDF");
    let chain = k::Chain::<f64>::from_urdf_file(&path).expect("k loads the hand");
    std::fs::remove_file(&path).ok();
    chain
}

/// The configurations `qs` (model joint order) in k's depth-first joint order.
fn in_k_order(model: &HandModel, chain: &k::Chain<f64>, qs: &Array2<f64>) -> Vec<Vec<f64>> {
    let order: Vec<usize> = chain
        .iter_joints()
        .filter(|j| j.is_movable())
        .map(|j| model.dof_index(&j.name).expect("same joints"))
        .collect();
    qs.rows()
        .into_iter()
        .map(|r| order.iter().map(|&d| r[d]).collect())
        .collect()
}

fn fk_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("fk_single");
    for hand in BuiltinHand::ALL {
        let model = hand.model();
        let qs = random_configurations(&model, 256, 1);
        let mut out = vec![Isometry3::identity(); model.links().len()];
        let mut i = 0;
        group.bench_function(BenchmarkId::new("dex", hand.name()), |b| {
            b.iter(|| {
                i = (i + 1) % qs.nrows();
                let q = qs.row(i);
                model
                    .forward_kinematics_into(black_box(q.as_slice().expect("contiguous")), &mut out)
                    .expect("fk");
                black_box(&out);
            })
        });
        let chain = k_chain(hand.urdf());
        // Same configurations, in k's (depth-first) joint order.
        let k_qs = in_k_order(&model, &chain, &qs);
        let mut i = 0;
        group.bench_function(BenchmarkId::new("k", hand.name()), |b| {
            b.iter(|| {
                i = (i + 1) % k_qs.len();
                chain.set_joint_positions_unchecked(black_box(&k_qs[i]));
                black_box(chain.update_transforms());
            })
        });
    }
    group.finish();
}

fn fk_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fk_batch_4096");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    let model = HandModel::leap_right();
    let qs = random_configurations(&model, BATCH, 2);
    let mut out = vec![Isometry3::identity(); BATCH * model.links().len()];
    group.bench_function("dex/leap/serial", |b| {
        b.iter(|| {
            model
                .forward_kinematics_batch_into(black_box(qs.view()), &mut out)
                .expect("fk")
        })
    });
    group.bench_function("dex/leap/rayon", |b| {
        b.iter(|| {
            model
                .forward_kinematics_batch_par_into(black_box(qs.view()), &mut out)
                .expect("fk")
        })
    });
    group.bench_function("dex/leap/allocating", |b| {
        b.iter(|| {
            black_box(
                model
                    .forward_kinematics_batch(black_box(qs.view()))
                    .expect("fk"),
            )
        })
    });
    let chain = k_chain(BuiltinHand::LeapRight.urdf());
    let k_qs = in_k_order(&model, &chain, &qs);
    group.bench_function("k/leap/serial", |b| {
        b.iter(|| {
            for q in &k_qs {
                chain.set_joint_positions_unchecked(q);
                black_box(chain.update_transforms());
            }
        })
    });
    group.finish();
}

fn jacobian(c: &mut Criterion) {
    let mut group = c.benchmark_group("jacobian");
    let model = HandModel::leap_right();
    let q = model.mid_configuration();
    let tip = model.fingertips()[0].clone();
    let point: Point3<f64> = tip.offset.translation.vector.into();
    group.bench_function("dex/leap/index_tip/with_fk", |b| {
        b.iter(|| {
            black_box(
                model
                    .jacobian(black_box(&q), tip.link, &point)
                    .expect("jacobian"),
            )
        })
    });
    let poses = model.forward_kinematics(&q).expect("fk");
    let mut out = Matrix6xX::zeros(model.dof());
    group.bench_function("dex/leap/index_tip/from_poses", |b| {
        b.iter(|| model.jacobian_from_poses(black_box(&poses), tip.link, &point, &mut out))
    });
    group.finish();
}

fn rigid_alignment(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let truth = Isometry3::new(
        Vector3::new(0.02, -0.01, 0.03),
        Vector3::new(0.2, -0.3, 0.1),
    );
    let source: Vec<Point3<f64>> = (0..5000)
        .map(|_| {
            Point3::new(
                rng.random_range(-0.05..0.05),
                rng.random_range(-0.05..0.05),
                rng.random_range(-0.05..0.05),
            )
        })
        .collect();
    let target: Vec<_> = source.iter().map(|p| truth * p).collect();
    c.bench_function("kabsch/5000", |b| {
        b.iter(|| black_box(kabsch(black_box(&source), black_box(&target)).expect("kabsch")))
    });
}

criterion_group!(benches, fk_single, fk_batch, jacobian, rigid_alignment);
criterion_main!(benches);
