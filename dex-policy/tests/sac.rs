//! SAC: the C51 projection, the replay buffer, learning, checkpoints, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{image_point_envs, point_envs};

use dex_policy::{
    ActMode, Error, Policy, ReplayBuffer, SacConfig, SacPolicy, SacTrainer, Trainer, c51_project,
    evaluate, load_checkpoint,
};
use ndarray::{Array2, array};
use rand::SeedableRng;

#[test]
fn c51_projection_matches_hand_computed_values() {
    // Support {-1, 0, 1}, Δz = 1.
    let z = [-1.0f32, 0.0, 1.0];
    let p = array![
        [0.2f32, 0.5, 0.3],
        [0.2, 0.5, 0.3],
        [0.0, 1.0, 0.0],
        [0.5, 0.0, 0.5]
    ];
    // Row 0: r = 0.5, γ = 0.5, not done: Tz = {0, 0.5, 1} →
    //   0.2 → atom 1; 0.5 split 0.25/0.25 over atoms 1, 2; 0.3 → atom 2.
    // Row 1: terminated, r = 0.5: everything at 0.5 → half on atom 1, half on atom 2.
    // Row 2: r = 3 (clamped to 1): all mass on atom 2.
    // Row 3: shift 1 (SAC's α log π), r = 0, γ = 0.5: Tz = {-1, -0.5 → split, 0}:
    //   0.5 at z=-1 → Tz = 0.5·(-1-1) = -1 → atom 0; 0.5 at z=1 → Tz = 0 → atom 1.
    let out = c51_project(
        &z,
        p.view(),
        &[0.5, 0.5, 3.0, 0.0],
        &[1.0, 0.0, 1.0, 1.0],
        &[0.0, 0.0, 0.0, 1.0],
        0.5,
    )
    .unwrap();
    let expected = array![
        [0.0f32, 0.45, 0.55],
        [0.0, 0.5, 0.5],
        [0.0, 0.0, 1.0],
        [0.5, 0.5, 0.0]
    ];
    for (a, b) in out.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{out:?} vs {expected:?}");
    }
    // Mass is conserved on a wider support with random rows.
    let z: Vec<f32> = (0..101).map(|j| -20.0 + 0.4 * j as f32).collect();
    let mut p = Array2::<f32>::from_elem((3, 101), 1.0 / 101.0);
    p[(1, 0)] += 0.5;
    p.row_mut(1).mapv_inplace(|v| v / 1.5);
    let out = c51_project(
        &z,
        p.view(),
        &[1.3, -7.9, 25.0],
        &[1.0, 1.0, 0.0],
        &[0.1, 0.0, 0.0],
        0.9,
    )
    .unwrap();
    for row in out.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
    // Bad shapes are errors.
    assert!(c51_project(&z[..10], p.view(), &[0.0; 3], &[1.0; 3], &[0.0; 3], 0.9).is_err());
    assert!(c51_project(&z, p.view(), &[0.0; 2], &[1.0; 3], &[0.0; 3], 0.9).is_err());
}

#[test]
fn replay_buffer_pairs_each_row_with_the_next_and_skips_reset_steps() {
    // 2 envs, capacity 4 steps; the state is (env, step) so pairs can be checked.
    let mut buf = ReplayBuffer::new(2, 4, 2, 1, 1).unwrap();
    let no = Array2::<u8>::zeros((2, 1));
    for t in 0..7 {
        let states = array![[0.0f32, t as f32], [1.0, t as f32]];
        let actions = array![[t as f32], [t as f32]];
        // Env 1's step 3 is an auto-reset step: not a transition.
        let valid = [true, t != 3];
        let images = no.mapv(|_| t as u8);
        buf.push(
            states.view(),
            images.view(),
            actions.view(),
            &[t as f32, -(t as f32)],
            &[false, t == 2],
            &valid,
        )
        .unwrap();
        let _ = &no;
    }
    assert_eq!(buf.len(), 4);
    // Stored steps 3..=6; rows with a successor: steps 3, 4, 5; env 1's step 3 invalid.
    assert_eq!(buf.transitions(), 5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let b = buf.sample(2000, &mut rng).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..2000 {
        let (env, t) = (b.states[(k, 0)], b.states[(k, 1)]);
        assert_eq!(
            b.next_states[(k, 0)],
            env,
            "next observation from another env"
        );
        assert_eq!(
            b.next_states[(k, 1)],
            t + 1.0,
            "next observation is not the next row"
        );
        assert_eq!(b.actions[(k, 0)], t);
        assert_eq!(b.images[(k, 0)], t as u8);
        assert_eq!(b.next_images[(k, 0)], t as u8 + 1);
        assert!((3.0..=5.0).contains(&t), "sampled step {t}");
        assert!(!(env == 1.0 && t == 3.0), "sampled an auto-reset step");
        assert_eq!(b.rewards[k], if env == 0.0 { t } else { -t });
        seen.insert((env as i32, t as i32));
    }
    assert_eq!(seen.len(), 5);
    // Shape errors.
    let bad = Array2::<f32>::zeros((3, 2));
    assert!(
        buf.push(
            bad.view(),
            no.view(),
            array![[0.0f32], [0.0]].view(),
            &[0.0; 2],
            &[false; 2],
            &[true; 2]
        )
        .is_err()
    );
    assert!(ReplayBuffer::new(2, 1, 2, 0, 1).is_err());
    assert!(
        ReplayBuffer::new(2, 4, 2, 0, 1)
            .unwrap()
            .sample(1, &mut rng)
            .is_err()
    );
}

fn small_config(seed: u64) -> SacConfig {
    SacConfig {
        num_envs: 8,
        batch_size: 128,
        buffer_size: 20_000,
        learning_starts: 400,
        utd: 0.5,
        hidden: vec![64, 64],
        actor_lr: 1e-3,
        critic_lr: 1e-3,
        alpha_lr: 1e-3,
        seed,
        ..SacConfig::default()
    }
}

fn train_and_evaluate(config: SacConfig, steps: usize) -> (f64, f64) {
    let mut trainer =
        SacTrainer::new(point_envs(config.num_envs), config, toml::Table::new()).unwrap();
    let mut p = trainer.policy().unwrap();
    let before = evaluate(&mut p, &mut point_envs(16), 100, 7, ActMode::Deterministic).unwrap();
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    let mut p = trainer.policy().unwrap();
    let after = evaluate(&mut p, &mut point_envs(16), 100, 7, ActMode::Deterministic).unwrap();
    (before.success_rate, after.success_rate)
}

#[test]
fn sac_with_c51_and_layer_norm_solves_a_point_task_within_a_bounded_number_of_updates() {
    // 300 steps of 8 envs at UTD 0.5: 1,200 updates after 400 random transitions.
    let (before, after) = train_and_evaluate(small_config(1), 300);
    assert!(
        after >= 0.9 && after > before + 0.3,
        "success {before:.2} → {after:.2}"
    );
}

#[test]
fn plain_sac_solves_a_point_task_within_a_bounded_number_of_updates() {
    let config = SacConfig {
        distributional: false,
        layer_norm: false,
        ..small_config(2)
    };
    let (before, after) = train_and_evaluate(config, 300);
    assert!(
        after >= 0.9 && after > before + 0.3,
        "success {before:.2} → {after:.2}"
    );
}

#[test]
fn sac_same_seed_same_checkpoint_bytes_resume_and_load_any() {
    let dir = std::env::temp_dir().join(format!("dex-policy-sac-{}", std::process::id()));
    let mut bytes = Vec::new();
    let mut steps = 0;
    for run in 0..2 {
        let mut t = SacTrainer::new(point_envs(8), small_config(5), toml::Table::new()).unwrap();
        for _ in 0..60 {
            t.step().unwrap();
        }
        assert!(t.updates() > 0);
        steps = t.env_steps();
        let d = dir.join(format!("run{run}"));
        t.save(&d).unwrap();
        bytes.push(std::fs::read(d.join(dex_policy::ppo::WEIGHTS_FILE)).unwrap());
    }
    assert_eq!(bytes[0], bytes[1]);
    // Any checkpoint loads through load_checkpoint, and acts like SacPolicy::load.
    let mut any = load_checkpoint(&dir.join("run0")).unwrap();
    assert_eq!(any.algorithm, "sac");
    let (mut direct, meta) = SacPolicy::load(&dir.join("run0")).unwrap();
    // Auto-reset steps are not environment transitions.
    assert!(steps > 0 && steps < 60 * 8, "{steps}");
    assert_eq!(meta.env_steps, steps);
    let obs = array![[0.3f32, -0.2], [-0.5, 0.9]];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let a1 = any
        .policy
        .act(obs.view(), ActMode::Deterministic, &mut rng)
        .unwrap();
    let a2 = direct
        .act(obs.view(), ActMode::Deterministic, &mut rng)
        .unwrap();
    assert_eq!(a1, a2);
    assert!(a1.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Resuming restores the counters and the weights.
    let mut t = SacTrainer::new(point_envs(8), small_config(9), toml::Table::new()).unwrap();
    Trainer::resume(&mut t, &dir.join("run0")).unwrap();
    assert_eq!(t.env_steps(), steps);
    let mut p = t.policy().unwrap();
    assert_eq!(
        p.act(obs.view(), ActMode::Deterministic, &mut rng).unwrap(),
        a1
    );
    // A checkpoint with other networks is refused.
    let mut wide = SacTrainer::new(
        point_envs(8),
        SacConfig {
            hidden: vec![32],
            ..small_config(9)
        },
        toml::Table::new(),
    )
    .unwrap();
    assert!(matches!(
        wide.resume(&dir.join("run0")),
        Err(Error::Checkpoint { .. })
    ));
    // Wrong shapes in the metadata, a corrupt weights file, a missing directory.
    let d = dir.join("run1");
    let meta = std::fs::read_to_string(d.join(dex_policy::ppo::META_FILE)).unwrap();
    std::fs::write(
        d.join(dex_policy::ppo::META_FILE),
        meta.replace("hidden = [64, 64]", "hidden = [64, 65]"),
    )
    .unwrap();
    assert!(matches!(SacPolicy::load(&d), Err(Error::Checkpoint { .. })));
    std::fs::write(d.join(dex_policy::ppo::META_FILE), &meta).unwrap();
    std::fs::write(d.join(dex_policy::ppo::WEIGHTS_FILE), b"garbage").unwrap();
    assert!(matches!(load_checkpoint(&d), Err(Error::Checkpoint { .. })));
    assert!(matches!(
        load_checkpoint(&dir.join("none")),
        Err(Error::Checkpoint { .. })
    ));
    // NaN observations are reported.
    let bad = array![[0.0f32, f32::NAN]];
    assert!(matches!(
        direct.act(bad.view(), ActMode::Deterministic, &mut rng),
        Err(Error::NonFiniteObservation { row: 0, index: 1 })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_sac_settings_are_errors() {
    for bad in [
        SacConfig {
            atoms: 1,
            ..SacConfig::default()
        },
        SacConfig {
            v_min: 1.0,
            v_max: 1.0,
            ..SacConfig::default()
        },
        SacConfig {
            tau: 0.0,
            ..SacConfig::default()
        },
        SacConfig {
            utd: f64::NAN,
            ..SacConfig::default()
        },
        SacConfig {
            buffer_size: 3,
            ..SacConfig::default()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidSetting { .. })),
            "{bad:?}"
        );
    }
    // A VecEnv of the wrong size.
    assert!(SacTrainer::new(point_envs(4), small_config(0), toml::Table::new()).is_err());
}

#[test]
fn sac_learns_from_an_image_and_its_checkpoint_acts_the_same() {
    // The target is only in the image: a policy that ignored it would succeed in about
    // 5% of episodes (|x − target| < 0.05 by chance).
    let config = SacConfig {
        cnn: dex_policy::CnnConfig {
            channels: vec![8],
            kernels: vec![3],
            strides: vec![1],
            output: 16,
            ..dex_policy::CnnConfig::default()
        },
        ..small_config(3)
    };
    let mut trainer = SacTrainer::new(image_point_envs(8), config, toml::Table::new()).unwrap();
    for _ in 0..300 {
        trainer.step().unwrap();
    }
    let mut p = trainer.policy().unwrap();
    let r = evaluate(
        &mut p,
        &mut image_point_envs(16),
        100,
        7,
        ActMode::Deterministic,
    )
    .unwrap();
    assert!(r.success_rate >= 0.8, "success {:.2}", r.success_rate);
    // The checkpoint holds the encoder: the loaded policy acts as the trainer's.
    let dir = std::env::temp_dir().join(format!("dex-policy-sac-image-{}", std::process::id()));
    trainer.save(&dir).unwrap();
    let (mut loaded, meta) = SacPolicy::load(&dir).unwrap();
    assert_eq!(meta.image, vec![4, 4]);
    let obs = Array2::from_shape_fn((3, 17), |(i, j)| if j == 0 { i as f32 * 0.1 } else { 0.3 });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let a = p.act(obs.view(), ActMode::Deterministic, &mut rng).unwrap();
    let b = loaded
        .act(obs.view(), ActMode::Deterministic, &mut rng)
        .unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).unwrap();
}
