//! The dataset, the model bundle, the controller and the evaluation's inputs.

use dex_core::HandModel;
use dex_diffusion::dataset::{
    DROP_DISCARD_STEPS, DataReader, DataWriter, KeypointSet, MotionOf, SampleSpec, Samples,
    StepLayout,
};
use dex_diffusion::{
    CollectConfig, CommandSpec, DexGen, DexGenConfig, DexGenController, Error, IdmConfig,
    TaskSettings, collect,
};
use dex_policy::{ActMode, MockPolicy, Policy};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dex-diffusion-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An episode of `len` rows whose every value encodes (episode, step, column).
fn episode(layout: &StepLayout, id: usize, len: usize) -> Vec<f32> {
    (0..len * layout.width())
        .map(|i| (id * 10_000 + (i / layout.width()) * 100 + i % layout.width()) as f32 * 1e-3)
        .collect()
}

#[test]
fn a_dataset_round_trips_and_a_drop_loses_its_last_two_seconds() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let layout = StepLayout::for_model(&hand);
    assert_eq!(layout.keypoints, 8);
    assert_eq!(layout.tips, vec![1, 3, 5, 7]);
    let dir = tmp("roundtrip");
    let mut w = DataWriter::create(&dir, &hand, 10.0, 50, toml::Table::new())?;
    w.push_episode(&episode(&layout, 0, 30), false, 2)?;
    w.push_episode(&episode(&layout, 1, 40), true, 1)?; // 70 rows pending: a chunk
    w.push_episode(&episode(&layout, 2, 10), true, 0)?; // shorter than the cut: gone
    w.push_episode(&episode(&layout, 3, 25), false, 0)?;
    let manifest = w.finish()?;
    assert_eq!(manifest.chunks.len(), 2);
    assert_eq!(manifest.rows(), 30 + (40 - DROP_DISCARD_STEPS) + 25);
    let reader = DataReader::open(&dir)?;
    let c0 = reader.chunk(0)?;
    assert_eq!(c0.episodes.len(), 2);
    assert_eq!((c0.episodes[1].first, c0.episodes[1].len), (30, 20));
    assert!(c0.episodes[1].dropped);
    assert_eq!(c0.episodes[0].goals, 2);
    // Row 35 of the chunk is step 5 of episode 1, column 3.
    assert_eq!(c0.steps[[35, 3]], (10_000 + 500 + 3) as f32 * 1e-3);
    let c1 = reader.chunk(1)?;
    assert_eq!(c1.steps.nrows(), 25);
    assert!(matches!(reader.chunk(2), Err(Error::InvalidSetting { .. })));
    // A second writer refuses the directory.
    assert!(matches!(
        DataWriter::create(&dir, &hand, 10.0, 50, toml::Table::new()),
        Err(Error::Data { .. })
    ));
    Ok(())
}

#[test]
fn a_truncated_chunk_is_an_error_naming_its_file() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let layout = StepLayout::for_model(&hand);
    let dir = tmp("truncated");
    let mut w = DataWriter::create(&dir, &hand, 10.0, 10, toml::Table::new())?;
    w.push_episode(&episode(&layout, 0, 12), false, 0)?;
    w.finish()?;
    let file = dir.join("steps-000000.npy");
    let bytes = std::fs::read(&file)?;
    std::fs::write(&file, &bytes[..bytes.len() / 2])?;
    let err = DataReader::open(&dir)?.chunk(0).unwrap_err();
    assert!(matches!(err, Error::Data { .. }));
    assert!(err.to_string().contains("steps-000000.npy"), "{err}");
    let err = DataReader::open(&dir.join("missing")).unwrap_err();
    assert!(err.to_string().contains("dexgen.toml"), "{err}");
    Ok(())
}

#[test]
fn samples_hold_the_history_the_future_motion_and_the_target_change() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let layout = StepLayout::for_model(&hand);
    let dir = tmp("samples");
    let mut w = DataWriter::create(&dir, &hand, 10.0, 100, toml::Table::new())?;
    w.push_episode(&episode(&layout, 0, 6), false, 0)?;
    w.finish()?;
    let chunk = DataReader::open(&dir)?.chunk(0)?;
    let spec = SampleSpec {
        motion: MotionOf::Measured,
        ..SampleSpec::default()
    };
    let s = Samples::from_chunk(&chunk, &layout, &spec, None)?;
    // Steps 0..=3 have two future steps in an episode of 6.
    assert_eq!(s.len(), 4);
    assert_eq!(s.condition.ncols(), spec.condition_dim(&layout));
    assert_eq!(spec.condition_dim(&layout), 4 * (12 + 48) + 2);
    assert_eq!(s.motion.ncols(), 2 * 8 * 3);
    let v = |step: usize, col: usize| chunk.steps[[step, col]];
    // Sample 2: Δx₁ of keypoint 0, x = x₃ − x₂; Δx₂ of keypoint 7, z.
    assert!((s.motion[[2, 0]] - (v(3, 0) - v(2, 0))).abs() < 1e-6);
    assert!((s.motion[[2, 24 + 23]] - (v(4, 23) - v(2, 23))).abs() < 1e-6);
    // Sample 1's history: steps 1, 0, 0, 0 (the start repeats); first value: tip 1 x.
    let step_dim = spec.step_dim(&layout);
    assert_eq!(s.condition[[1, 0]], v(1, 3));
    assert_eq!(s.condition[[1, step_dim]], v(0, 3));
    assert_eq!(s.condition[[1, 3 * step_dim]], v(0, 3));
    // The target change: targets in force at t + 1 minus those at t.
    let t = layout.targets();
    assert!((s.target_change[[2, 5]] - (v(3, t + 5) - v(2, t + 5))).abs() < 1e-6);
    // Tips only: K = 4.
    let tips = SampleSpec {
        keypoints: KeypointSet::Tips,
        ..spec.clone()
    };
    assert_eq!(
        Samples::from_chunk(&chunk, &layout, &tips, None)?
            .motion
            .ncols(),
        24
    );
    Ok(())
}

#[test]
fn a_spec_without_the_motion_setting_reads_as_measured_motions() -> anyhow::Result<()> {
    // Files written before the setting existed learnt measured motions.
    let old: SampleSpec = toml::from_str("history = 4\nhorizon = 2\nkeypoints = \"all\"")?;
    assert_eq!(old.motion, MotionOf::Measured);
    let new: SampleSpec = toml::from_str("motion = \"targets\"")?;
    assert_eq!(new.motion, MotionOf::Targets);
    assert_eq!(SampleSpec::default().motion, MotionOf::Targets);
    assert!(toml::from_str::<SampleSpec>("motion = \"velocities\"").is_err());
    Ok(())
}

#[test]
fn target_motions_follow_the_keypoints_of_the_targets_in_force() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let layout = StepLayout::for_model(&hand);
    let dir = tmp("target-motion");
    let mut w = DataWriter::create(&dir, &hand, 10.0, 100, toml::Table::new())?;
    w.push_episode(&episode(&layout, 0, 6), false, 0)?;
    w.finish()?;
    let reader = DataReader::open(&dir)?;
    let chunk = reader.chunk(0)?;
    let spec = SampleSpec::default();
    assert_eq!(spec.motion, MotionOf::Targets);
    // Without the hand's kinematics target motions cannot be cut.
    assert!(matches!(
        Samples::from_chunk(&chunk, &layout, &spec, None),
        Err(Error::InvalidSetting { .. })
    ));
    let hand_of_data = dex_diffusion::dataset::hand_for(reader.manifest(), &spec)?;
    let s = Samples::from_chunk(&chunk, &layout, &spec, hand_of_data.as_ref())?;
    let fk = |step: usize| -> anyhow::Result<Vec<f64>> {
        let t = layout.targets();
        let q: Vec<f64> = (0..layout.dof)
            .map(|j| f64::from(chunk.steps[[step, t + j]]))
            .collect();
        Ok(hand
            .keypoint_positions(&q)?
            .positions
            .iter()
            .flat_map(|p| [p.x, p.y, p.z])
            .collect())
    };
    // Sample 1: Δx₁ = FK(q̃₂) − FK(q̃₁), Δx₂ = FK(q̃₃) − FK(q̃₁), every keypoint.
    let (x1, x2, x3) = (fk(1)?, fk(2)?, fk(3)?);
    for v in 0..24 {
        assert!((f64::from(s.motion[[1, v]]) - (x2[v] - x1[v])).abs() < 1e-5);
        assert!((f64::from(s.motion[[1, 24 + v]]) - (x3[v] - x1[v])).abs() < 1e-5);
    }
    assert!(s.motion.iter().any(|v| v.abs() > 1e-4), "the targets move");
    // The condition and the target change do not depend on whose motion it is.
    let measured = SampleSpec {
        motion: MotionOf::Measured,
        ..spec
    };
    let m = Samples::from_chunk(&chunk, &layout, &measured, None)?;
    assert_eq!(m.condition, s.condition);
    assert_eq!(m.target_change, s.target_change);
    assert_ne!(m.motion, s.motion);
    Ok(())
}

/// A small DexGen model with random weights and identity normalisation.
fn random_model(hand: &HandModel) -> anyhow::Result<DexGen> {
    let mut config = DexGenConfig::default();
    config.denoiser.hidden = 32;
    config.denoiser.state_hidden = 32;
    config.denoiser.time_dim = 16;
    config.idm = IdmConfig {
        hidden: 32,
        blocks: 1,
        ..IdmConfig::default()
    };
    Ok(DexGen::untrained(config, &StepLayout::for_model(hand), 7)?)
}

/// An anygrasp-shaped observation row (history 1) at the hand's mid configuration.
fn observation(hand: &HandModel, width: usize) -> Array2<f32> {
    let mut row = vec![0.0f32; width];
    // q and targets at mid range are 0 in normalised units; give them a little spread.
    for j in 0..hand.dof() {
        row[j] = 0.1 * (j as f32 / 16.0);
        row[hand.dof() + j] = 0.1 * (j as f32 / 16.0) + 0.02;
    }
    Array2::from_shape_vec((1, width), row).unwrap_or_else(|_| Array2::zeros((1, width)))
}

#[test]
fn with_unbounded_guidance_the_motion_is_the_command() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let mut model = random_model(&hand)?;
    let cd = model.file().config.denoiser.condition_dim;
    let condition = Array2::from_shape_fn((3, cd), |(i, j)| ((i * 7 + j) % 11) as f32 * 0.1);
    let command =
        Array2::from_shape_fn((3, 24), |(i, j)| (i as f32 - 1.0) * 0.004 + j as f32 * 1e-4);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (motion, change) =
        model.control(condition.view(), Some((command.view(), 1e12)), &mut rng)?;
    assert_eq!(change.dim(), (3, 16));
    for i in 0..3 {
        for step in 0..2 {
            for j in 0..24 {
                let got = motion[[i, 24 * step + j]];
                assert!(
                    (got - command[[i, j]]).abs() < 1e-6,
                    "{got} vs {}",
                    command[[i, j]]
                );
            }
        }
    }
    // Without guidance the motion is the prior's, not the command.
    let (free, _) = model.control(condition.view(), None, &mut rng)?;
    let far = (0..24).any(|j| (free[[0, j]] - command[[0, j]]).abs() > 1e-4);
    assert!(far);
    Ok(())
}

#[test]
fn the_controller_refuses_nan_commands_and_is_deterministic_for_a_seed() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let width = 100;
    let source = MockPolicy::new(width, vec![0.5; 16]);
    let mut c = DexGenController::new(random_model(&hand)?, source, hand.clone(), 0.4, 100.0)?;
    let obs = observation(&hand, width);
    let a1 = c.act(
        obs.view(),
        ActMode::Deterministic,
        &mut ChaCha8Rng::seed_from_u64(3),
    )?;
    c.reset(0);
    let a2 = c.act(
        obs.view(),
        ActMode::Deterministic,
        &mut ChaCha8Rng::seed_from_u64(3),
    )?;
    assert_eq!(a1, a2);
    assert!(a1.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    // A NaN keypoint command is an error, not a NaN target.
    let mut cmd = Array2::zeros((1, 24));
    cmd[[0, 5]] = f32::NAN;
    let err = c
        .act_with_command(obs.view(), cmd.view(), &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err();
    assert!(matches!(err, Error::NotFinite { .. }), "{err}");
    // A source that emits NaN is refused too.
    let nan = MockPolicy::new(width, vec![f32::NAN; 16]);
    let mut c = DexGenController::new(random_model(&hand)?, nan, hand.clone(), 0.4, 1.0)?;
    assert!(
        c.act(
            obs.view(),
            ActMode::Deterministic,
            &mut ChaCha8Rng::seed_from_u64(0)
        )
        .is_err()
    );
    // Wrong widths and strengths.
    assert!(
        c.act(
            Array2::zeros((1, 7)).view(),
            ActMode::Deterministic,
            &mut ChaCha8Rng::seed_from_u64(0)
        )
        .is_err()
    );
    assert!(c.set_guidance(-1.0).is_err());
    assert!(c.set_guidance(f64::NAN).is_err());
    let short = MockPolicy::new(width, vec![0.0; 3]);
    assert!(DexGenController::new(random_model(&hand)?, short, hand.clone(), 0.4, 1.0).is_err());
    // A model trained on another hand layout.
    let allegro = HandModel::allegro_right();
    let src = MockPolicy::new(width, vec![0.0; 16]);
    let ok = DexGenController::new(random_model(&hand)?, src, allegro, 0.4, 1.0);
    // Allegro also has 16 joints and 8 keypoints: the layouts agree, so it is accepted.
    assert!(ok.is_ok());
    Ok(())
}

#[test]
fn command_specs_parse_and_bad_ones_are_typed_errors() {
    assert_eq!(
        "expert".parse::<CommandSpec>().ok(),
        Some(CommandSpec::Expert)
    );
    assert_eq!(
        "noisy:1.5".parse::<CommandSpec>().ok(),
        Some(CommandSpec::Noisy(1.5))
    );
    assert_eq!(
        "slow:0.5".parse::<CommandSpec>().ok(),
        Some(CommandSpec::Slow(0.5))
    );
    for bad in ["", "noisy", "noisy:x", "noisy:-1", "fast:1", "slow:nan"] {
        let err = bad.parse::<CommandSpec>().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidSetting {
                    what: "command",
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[test]
fn collection_writes_a_readable_dataset_the_same_for_a_seed() -> anyhow::Result<()> {
    let hand = HandModel::leap_right();
    let config = CollectConfig {
        episodes: 3,
        seed: 5,
        workers: 2,
        chunk_rows: 40,
        task: TaskSettings {
            episode_steps: 30,
            ..TaskSettings::default()
        },
        ..CollectConfig::default()
    };
    let (a, b) = (tmp("collect-a"), tmp("collect-b"));
    let mut seen = 0;
    let ra = collect(&hand, &config, &a, &mut |n| seen = n)?;
    assert_eq!(seen, 3);
    collect(&hand, &config, &b, &mut |_| {})?;
    assert_eq!(ra.episodes, 3);
    let reader = DataReader::open(&a)?;
    assert!((1..=3).contains(&reader.manifest().episodes()));
    let rows: usize = (0..reader.chunks())
        .map(|k| reader.chunk(k).map(|c| c.steps.nrows()))
        .sum::<Result<usize, _>>()?;
    assert_eq!(rows, reader.manifest().rows());
    for k in 0..reader.chunks() {
        let f = format!("steps-{k:06}.npy");
        assert_eq!(std::fs::read(a.join(&f))?, std::fs::read(b.join(&f))?);
    }
    // Keypoints in the rows are the forward kinematics of the rows' joint positions.
    let chunk = reader.chunk(0)?;
    let layout = &reader.manifest().layout;
    let q: Vec<f64> = (0..16)
        .map(|j| f64::from(chunk.steps[[3, layout.q() + j]]))
        .collect();
    let kp = hand.keypoint_positions(&q)?;
    assert!((kp.positions[7].z as f32 - chunk.steps[[3, 23]]).abs() < 1e-5);
    assert!(
        collect(&hand, &config, &a, &mut |_| {}).is_err(),
        "refuses an existing dataset"
    );
    Ok(())
}

#[test]
fn task_settings_refuse_bad_values() {
    for bad in [
        TaskSettings {
            episode_steps: 0,
            ..TaskSettings::default()
        },
        TaskSettings {
            relative_scale: 0.0,
            ..TaskSettings::default()
        },
        TaskSettings {
            gravity_tilt: 4.0,
            ..TaskSettings::default()
        },
        TaskSettings {
            grasps: 1,
            ..TaskSettings::default()
        },
        TaskSettings {
            yaw_range: -0.1,
            ..TaskSettings::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

/// Mean cosine between the controller's target changes and the expert's over an episode
/// of the shipped controller at guidance `alpha`, on steps where the expert moves.
fn agreement_with_the_expert(alpha: f64) -> anyhow::Result<(f64, usize)> {
    use dex_diffusion::GraspExpert;
    use dex_sim::Env;
    let hand = HandModel::leap_right();
    let settings = TaskSettings::default();
    let mut task = settings.build(hand.clone(), dex_sim::ObjectSpec::cube(0.05, 0.1), 0)?;
    let od = task.observation_spec().state.dim();
    let expert = GraspExpert::new(
        &hand,
        vec![task.grasps().to_vec()],
        od,
        settings.relative_scale,
        0.03,
    )?;
    let mut probe = expert.clone();
    let mut controller = DexGenController::new(
        DexGen::builtin()?,
        expert,
        hand.clone(),
        settings.relative_scale,
        alpha,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut obs, _) = task.reset(Some(4))?;
    let (mut agree, mut moving) = (0.0, 0usize);
    for _ in 0..150 {
        let x = Array2::from_shape_vec((1, od), obs.state.clone())?;
        let wanted = probe.act(x.view(), ActMode::Deterministic, &mut rng)?;
        let got = controller.act(x.view(), ActMode::Deterministic, &mut rng)?;
        let norm = |a: &Array2<f32>| a.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm(&wanted) > 0.05 && norm(&got) > 1e-6 {
            let dot: f32 = wanted.iter().zip(got.iter()).map(|(a, b)| a * b).sum();
            agree += f64::from(dot / (norm(&wanted) * norm(&got)));
            moving += 1;
        }
        let step = task.step(got.as_slice().unwrap_or(&[0.0; 16]))?;
        obs = step.obs;
        if step.terminated || step.truncated {
            break;
        }
    }
    Ok((agree / moving.max(1) as f64, moving))
}

#[test]
fn with_unbounded_guidance_the_shipped_controller_follows_the_expert() -> anyhow::Result<()> {
    let (followed, moving) = agreement_with_the_expert(1e9)?;
    let (free, _) = agreement_with_the_expert(0.0)?;
    eprintln!(
        "cosine with the expert's target changes: α → ∞ {followed:.3} over {moving} steps, α = 0 {free:.3}"
    );
    assert!(moving >= 10, "the expert moved on {moving} steps only");
    assert!(followed > 0.5, "α → ∞: mean cosine {followed}");
    assert!(
        followed > free + 0.4,
        "α → ∞ {followed} against α = 0 {free}"
    );
    Ok(())
}

/// The shipped model with half-precision step weights samples the motions and gives the
/// target changes of full precision to within a few percent, for the same seed.
#[test]
fn half_precision_steps_keep_the_shipped_models_actions() -> anyhow::Result<()> {
    let mut model = DexGen::builtin()?;
    let cd = model.file().config.denoiser.condition_dim;
    let mut values = ChaCha8Rng::seed_from_u64(9);
    let condition = Array2::from_shape_fn((8, cd), |_| values.random_range(-1.0f32..1.0));
    let command = Array2::from_elem((8, 24), 0.004f32);
    let run = |model: &mut DexGen, alpha: f64| -> anyhow::Result<(Array2<f32>, Array2<f32>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        Ok(model.control(condition.view(), Some((command.view(), alpha)), &mut rng)?)
    };
    let norm = |a: &Array2<f32>| a.iter().map(|v| v * v).sum::<f32>().sqrt();
    for alpha in [0.0, 30.0] {
        model.set_precision(dex_diffusion::Precision::F32)?;
        let (m32, t32) = run(&mut model, alpha)?;
        model.set_precision(dex_diffusion::Precision::F16)?;
        assert_eq!(model.precision(), dex_diffusion::Precision::F16);
        let (m16, t16) = run(&mut model, alpha)?;
        let motion = norm(&(&m32 - &m16)) / norm(&m32);
        let targets = norm(&(&t32 - &t16)) / norm(&t32);
        eprintln!(
            "α = {alpha}: f16 against f32, relative difference motions {motion:e}, target changes {targets:e}"
        );
        assert!(motion > 0.0, "α = {alpha}: the f16 steps computed in f32");
        assert!(
            motion < 0.05 && targets < 0.05,
            "α = {alpha}: {motion} {targets}"
        );
    }
    Ok(())
}
