//! The Dex4D student on the pose proxy: DAgger's training set, learning, checkpoints,
//! the track evaluation and its errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_policy::point_track::{
    PointEncoding, PointTrackConfig, PointTrackDagger, PointTrackDaggerConfig, PointTrackInputs,
    PointTrackPolicy,
};
use dex_policy::proxy::{TrackController, evaluate_track};
use dex_policy::{ActMode, Policy, PoseProxyExpert, load_checkpoint};
use dex_sim::{Env, PoseProxy, PoseProxyConfig, ProxyLayout, VecEnv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn tiny() -> PointTrackConfig {
    PointTrackConfig {
        width: 16,
        point_width: 8,
        layers: 1,
        heads: 2,
        feed_forward: 16,
        ..PointTrackConfig::default()
    }
}

fn setup(config: &PointTrackConfig, envs: usize) -> (PointTrackDagger, PoseProxyExpert) {
    let proxy = PoseProxyConfig::default();
    let make =
        |_| -> dex_sim::Result<Box<dyn Env>> { Ok(Box::new(PoseProxy::new(proxy.clone())?)) };
    let venv = VecEnv::from_fn(envs, make).unwrap();
    let dim = venv.observation_spec().state.dim();
    let inputs = PointTrackInputs::proxy(&ProxyLayout::new(proxy.slots));
    let student = PointTrackPolicy::new(config, inputs, dim, 6, 3, Default::default()).unwrap();
    let dagger =
        PointTrackDagger::new(student, venv, PointTrackDaggerConfig::default(), 7).unwrap();
    (dagger, PoseProxyExpert::new(&proxy))
}

#[test]
fn world_model_targets_are_the_next_observations_joint_state() {
    let (mut dagger, mut teacher) = setup(&tiny(), 4);
    dagger.iterate(&mut teacher).unwrap();
    let (obs1, labels1, next1) = dagger.training_set().unwrap();
    dagger.iterate(&mut teacher).unwrap();
    let (obs, _, _) = dagger.training_set().unwrap();
    let layout = ProxyLayout::new(64);
    assert_eq!(obs1.nrows(), 4);
    assert_eq!(labels1.ncols(), 6);
    for i in 0..4 {
        // The second step's observations are the first step's next observations: the
        // targets are the joint state one step ahead, not the state acted on.
        let after = obs.row(4 + i);
        for c in 0..6 {
            assert_eq!(next1[[i, c]], after[layout.qpos.start + c]);
            assert_eq!(next1[[i, 6 + c]], after[layout.qvel.start + c]);
        }
        let moved = (0..6).any(|c| next1[[i, c]] != obs1[[i, layout.qpos.start + c]]);
        assert!(moved, "row {i}: the target must not be the current state");
    }
}

/// The mean keypoint distance to the first goal (a 20 cm lift) after 15 steps of
/// `policy` in 16 fresh proxies.
fn distance_after_lift(policy: &mut dyn Policy) -> f64 {
    let proxy = PoseProxyConfig::default();
    let make =
        |_| -> dex_sim::Result<Box<dyn Env>> { Ok(Box::new(PoseProxy::new(proxy.clone())?)) };
    let mut venv = VecEnv::from_fn(16, make).unwrap();
    let (obs, _) = venv.reset(99).unwrap();
    let dim = venv.observation_spec().state.dim();
    let mut x = ndarray::Array2::from_shape_fn((16, dim), |(i, c)| obs[i].state[c]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut distance = 0.0;
    for _ in 0..15 {
        let a = policy
            .act(x.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        let step = venv.step(a.as_slice().unwrap()).unwrap();
        x = ndarray::Array2::from_shape_fn((16, dim), |(i, c)| step.obs[i].state[c]);
        distance = step
            .infos
            .iter()
            .map(|i| i.get("mean_point_distance").unwrap())
            .sum::<f64>()
            / 16.0;
    }
    distance
}

#[test]
fn dagger_teaches_the_student_to_follow_the_points() {
    // About 20 s here; the distance falls from about 0.2 m to 0.03 m.
    const ITER: usize = 40;
    let config = PointTrackConfig::default();
    let (mut dagger, mut teacher) = setup(&config, 64);
    let mut last = None;
    for _ in 0..ITER {
        last = Some(dagger.iterate(&mut teacher).unwrap());
    }
    assert_eq!(last.unwrap().env_steps, ITER as u64 * 64);
    let mut trained = dagger.into_student();
    let (fresh, _) = setup(&config, 16);
    let mut untrained = fresh.into_student();
    let before = distance_after_lift(&mut untrained);
    let after = distance_after_lift(&mut trained);
    let expert = distance_after_lift(&mut teacher);
    assert!(
        after < 0.5 * before,
        "distance to the goal {before} → {after} (teacher {expert})"
    );
}

#[test]
fn checkpoints_round_trip_and_load_generically() {
    for encoder in [
        PointEncoding::Paired,
        PointEncoding::Decoupled,
        PointEncoding::Mlp,
    ] {
        let config = PointTrackConfig {
            encoder,
            attention: encoder != PointEncoding::Mlp,
            ..tiny()
        };
        let (mut dagger, mut teacher) = setup(&config, 4);
        for _ in 0..3 {
            dagger.iterate(&mut teacher).unwrap();
        }
        let (obs, _, _) = dagger.training_set().unwrap();
        let mut student = dagger.into_student();
        assert_eq!(student.meta().env_steps, 12);
        let dir = std::env::temp_dir().join(format!(
            "dex-point-track-{encoder:?}-{}",
            std::process::id()
        ));
        student.save(&dir).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let a = student
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        let mut loaded = load_checkpoint(&dir).unwrap();
        assert_eq!(loaded.algorithm, "dagger");
        let b = loaded
            .policy
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn goal_tracks_of_the_wrong_size_are_clear_errors() {
    let layout = ProxyLayout::new(64);
    let mut inputs = PointTrackInputs::proxy(&layout);
    // A goal block with a different point count than the current one.
    inputs.goal = inputs.goal.start..inputs.goal.end - 3;
    let err =
        PointTrackPolicy::new(&tiny(), inputs, layout.dim(), 6, 0, Default::default()).unwrap_err();
    assert!(err.to_string().contains("equal multiples of 3"), "{err}");
    // Observations narrower than the student's: an error, not a panic.
    let mut student = PointTrackPolicy::new(
        &tiny(),
        PointTrackInputs::proxy(&layout),
        layout.dim(),
        6,
        0,
        Default::default(),
    )
    .unwrap();
    let narrow = ndarray::Array2::<f32>::zeros((1, layout.dim() - 3));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(
        student
            .act(narrow.view(), ActMode::Deterministic, &mut rng)
            .is_err()
    );
}

#[test]
fn track_evaluation_is_deterministic_and_the_teacher_completes_it() {
    let track = PoseProxyConfig::track();
    let mut teacher = PoseProxyExpert::new(&track);
    let a = evaluate_track(TrackController::Policy(&mut teacher), &track, 12, 5).unwrap();
    let b = evaluate_track(TrackController::Policy(&mut teacher), &track, 12, 5).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.success, 1.0);
    assert_eq!(a.progress, 1.0);
    // Doing nothing reaches no waypoint.
    let mut idle = dex_policy::MockPolicy::new(ProxyLayout::new(64).dim(), vec![0.0; 6]);
    let idle = evaluate_track(TrackController::Policy(&mut idle), &track, 6, 5).unwrap();
    assert_eq!(idle.progress, 0.0);
    // A config that is not a track is refused.
    let err = evaluate_track(
        TrackController::OpenLoop { settle: 1 },
        &PoseProxyConfig::default(),
        4,
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("track"), "{err}");
}
