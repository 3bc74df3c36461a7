//! Criterion benches of dex-sim: physics steps, vectorised envs, depth rendering.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dex_core::HandModel;
use dex_sim::{
    Camera, ObjectSpec, RapierSim, SimConfig, Simulator, TaskConfig, VecEnv, WristConfig, make_env,
    rest_pose_on_palm,
};
use std::hint::black_box;

fn one_step() -> SimConfig {
    SimConfig {
        substeps: 1,
        ..SimConfig::default()
    }
}

fn cube_scene() -> RapierSim {
    let model = HandModel::leap_right();
    let config = one_step();
    let pose = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.001);
    let mut sim = RapierSim::new(model, &[ObjectSpec::cube(0.05, 0.1)], &[pose], config).unwrap();
    let hold = sim.joint_targets().to_vec();
    sim.set_joint_targets(&hold).unwrap();
    sim.step_physics(100).unwrap();
    sim
}

fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    let mut hand = RapierSim::hand_only(HandModel::leap_right(), one_step()).unwrap();
    g.bench_function("leap_hand_alone", |b| {
        b.iter(|| hand.step_physics(1).unwrap())
    });
    let mut sim = cube_scene();
    g.bench_function("leap_hand_cube", |b| {
        b.iter(|| sim.step_physics(1).unwrap())
    });
    // The hand on the 6-DoF wrist: one 22-DoF multibody instead of one per finger.
    let wrist = SimConfig {
        wrist: Some(WristConfig::default()),
        ..one_step()
    };
    let mut on_wrist = RapierSim::hand_only(HandModel::leap_right(), wrist).unwrap();
    on_wrist
        .set_wrist_target(&[0.1, 0.0, 0.1, 0.3, 0.0, 0.0])
        .unwrap();
    g.bench_function("leap_hand_on_wrist", |b| {
        b.iter(|| on_wrist.step_physics(1).unwrap())
    });
    g.finish();
}

fn vec_env(c: &mut Criterion) {
    let mut g = c.benchmark_group("vec_env_step");
    g.sample_size(10);
    for n in [2usize, 8, 64] {
        let config = TaskConfig {
            substeps: 10,
            episode_steps: 1_000_000,
            ..TaskConfig::default()
        };
        let mut venv = VecEnv::from_fn(n, |_| {
            make_env("rotate", HandModel::leap_right(), config.clone())
        })
        .unwrap();
        venv.reset(0).unwrap();
        let actions = vec![0.0f32; n * venv.action_space().dim()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(venv.step(&actions).unwrap()))
        });
        // The same batch on one thread: the ratio is the parallel scaling.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        g.bench_with_input(BenchmarkId::new("one_thread", n), &n, |b, _| {
            b.iter(|| one.install(|| black_box(venv.step(&actions).unwrap())))
        });
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("depth_render");
    let sim = cube_scene();
    let target = sim.object_state(0).unwrap().pose.translation.vector.into();
    for size in [64usize, 128] {
        let cam = Camera::overview(size, size, target).unwrap();
        g.throughput(Throughput::Elements((size * size) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| black_box(sim.render_depth(&cam).unwrap()))
        });
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        g.bench_with_input(BenchmarkId::new("one_thread", size), &size, |b, _| {
            b.iter(|| one.install(|| black_box(sim.render_depth(&cam).unwrap())))
        });
    }
    g.finish();
}

criterion_group!(benches, step, vec_env, render);
criterion_main!(benches);
