//! Cross-crate criterion benches: what one control tick of the whole stack costs, a
//! `VecEnv` step of each task, and batched forward kinematics.
//!
//! - `tick/mocks`: the reach task on the kinematic `MockSimulator` steps with the last
//!   action, a `MockPolicy` acts on its observation, the action becomes joint targets
//!   (`JointLimits::from_unit`) written to a `MockDriver`, whose state is read back;
//! - `tick/rapier_bus`: the same tick with physics everywhere: the reach task on rapier,
//!   the scripted IK expert as the policy, and the LEAP driver writing the targets over
//!   an in-process emulated servo bus whose servos are a second rapier hand
//!   (`SimJoints`, one physics period per goal write), reading the state back;
//! - `vec_env_step/<task>`: one step of 8 environments of each task (rapier, rayon);
//! - `fk_batch/leap_4096`: forward kinematics of 4,096 LEAP configurations (rayon).
//!
//! Run with `cargo bench -p dex-benches`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use dex_core::{HandModel, JointLimits, JointTargets};
use dex_hw::emulator::{PhysicsClock, SimJoints};
use dex_hw::{EmulatedPort, HandDriver, LeapConfig, LeapHand, MockDriver, ServoBus};
use dex_policy::{ActMode, MockPolicy, Policy, ReachIkExpert};
use dex_sim::{Env, RapierSim, SimConfig, TASK_NAMES, TaskConfig, VecEnv, make_env};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn targets_of(action: &[f32], limits: &[JointLimits]) -> JointTargets {
    JointTargets::new(
        action
            .iter()
            .zip(limits)
            .map(|(a, l)| l.from_unit(f64::from(*a)).clamp(l.lower, l.upper))
            .collect(),
    )
}

/// One tick: step `env` with `action`, let `policy` act on the observation, send the
/// action as targets through `driver` and read its state. Returns the next action.
fn tick(
    env: &mut dyn Env,
    policy: &mut dyn Policy,
    driver: &mut dyn HandDriver,
    limits: &[JointLimits],
    action: &[f32],
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let step = env.step(action).unwrap();
    let obs = if step.terminated || step.truncated {
        env.reset(None).unwrap().0
    } else {
        step.obs
    };
    let batch = ArrayView2::from_shape((1, obs.state.len()), &obs.state).unwrap();
    let out: Array2<f32> = policy.act(batch, ActMode::Deterministic, rng).unwrap();
    let action: Vec<f32> = out.row(0).to_vec();
    driver.write_targets(&targets_of(&action, limits)).unwrap();
    driver.read_state().unwrap();
    action
}

fn leap_over_emulated_bus() -> LeapHand<EmulatedPort> {
    let model = HandModel::leap_right();
    let config = SimConfig::for_hand(&model);
    let sim = RapierSim::new(model, &[], &[], config).unwrap();
    let bus = ServoBus::leap_hand_with_physics(
        Box::new(SimJoints::new(Box::new(sim))),
        PhysicsClock::PerGoalWrite,
    )
    .unwrap();
    let mut hand =
        LeapHand::open(EmulatedPort::new(bus, 4_000_000), LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    hand
}

fn control_tick(c: &mut Criterion) {
    let model = HandModel::leap_right();
    let limits = model.joint_limits();
    let dof = model.dof();
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    let mock = TaskConfig {
        mock_physics: true,
        ..TaskConfig::default()
    };
    let mut env = make_env("reach", model.clone(), mock).unwrap();
    let obs_dim = env.observation_spec().state.dim();
    env.reset(Some(1)).unwrap();
    let mut policy = MockPolicy::new(obs_dim, vec![0.1; dof]);
    let mut driver = MockDriver::new(dof);
    driver.configure().unwrap();
    driver.enable().unwrap();
    let mut action = vec![0.0f32; dof];
    c.bench_function("tick/mocks", |b| {
        b.iter(|| {
            action = tick(
                env.as_mut(),
                &mut policy,
                &mut driver,
                &limits,
                &action,
                &mut rng,
            );
        });
    });

    let mut env = make_env("reach", model.clone(), TaskConfig::default()).unwrap();
    env.reset(Some(1)).unwrap();
    let history = TaskConfig::default().history;
    let mut expert = ReachIkExpert::new(model.clone(), history).unwrap();
    let mut hand = leap_over_emulated_bus();
    let mut action = vec![0.0f32; dof];
    c.bench_function("tick/rapier_bus", |b| {
        b.iter(|| {
            action = tick(
                env.as_mut(),
                &mut expert,
                &mut hand,
                &limits,
                &action,
                &mut rng,
            );
        });
    });
}

fn vec_env_step(c: &mut Criterion) {
    let model = HandModel::leap_right();
    for &task in TASK_NAMES {
        let mut venv =
            VecEnv::from_fn(8, |_| make_env(task, model.clone(), TaskConfig::default())).unwrap();
        venv.reset(1).unwrap();
        // Each task's own action width (the wrist-mounted task and the proxy differ).
        let actions = vec![0.0f32; 8 * venv.action_space().dim()];
        c.bench_function(&format!("vec_env_step/{task}"), |b| {
            b.iter(|| venv.step(&actions).unwrap());
        });
    }
}

fn fk_batch(c: &mut Criterion) {
    let model = HandModel::leap_right();
    let dof = model.dof();
    let limits = model.joint_limits();
    let qs = Array2::from_shape_fn((4096, dof), |(i, j)| {
        limits[j].from_unit(((i * 7 + j * 13) % 101) as f64 / 50.0 - 1.0)
    });
    let mut out = vec![nalgebra::Isometry3::identity(); 4096 * model.links().len()];
    c.bench_function("fk_batch/leap_4096", |b| {
        b.iter(|| {
            model
                .forward_kinematics_batch_par_into(qs.view(), &mut out)
                .unwrap();
            std::hint::black_box(&out);
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = control_tick, vec_env_step, fk_batch
}
criterion_main!(benches);
