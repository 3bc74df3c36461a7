//! Collecting DexGen's dataset: the scripted expert on anygrasp-to-anygrasp, in parallel
//! over environments, written while it runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

use dex_core::HandModel;
use dex_policy::{ActMode, Policy};
use dex_sim::{Env, ObjectSpec, RandomObjectParams, random_object};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::dataset::{DataWriter, Manifest, StepLayout};
use crate::error::{Error, Result};
use crate::expert::{GraspExpert, TaskSettings};

/// Settings of [`collect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// Episodes to roll out.
    pub episodes: usize,
    /// Seed of objects, resets and the expert.
    pub seed: u64,
    /// Environments run at once (one thread each).
    pub workers: usize,
    /// Rows per chunk (chunks end at an episode's end).
    pub chunk_rows: usize,
    /// Episodes per object before the next object is drawn.
    pub episodes_per_object: usize,
    /// The expert's largest target change per step (rad).
    pub expert_step: f64,
    /// The task.
    pub task: TaskSettings,
}

impl Default for CollectConfig {
    fn default() -> Self {
        Self {
            episodes: 64,
            seed: 0,
            workers: 2,
            chunk_rows: 8192,
            episodes_per_object: 4,
            expert_step: 0.03,
            task: TaskSettings::default(),
        }
    }
}

/// The object of object slot `k`: the 5 cm cube on even slots, a random object (half of
/// them convex hulls, see [`random_object`]) on odd ones.
pub fn object_for(seed: u64, k: usize) -> ObjectSpec {
    if k.is_multiple_of(2) {
        ObjectSpec::cube(0.05, 0.1)
    } else {
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9E37));
        random_object(&mut rng, &RandomObjectParams::default())
    }
}

/// What [`collect`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectReport {
    /// The dataset's manifest.
    pub manifest: Manifest,
    /// Episodes rolled out.
    pub episodes: usize,
    /// Of which ended in a drop.
    pub drops: usize,
    /// Goals reached over all episodes.
    pub goals: usize,
    /// Mean simulated time before a drop or the end (s).
    pub mean_hold_s: f64,
    /// Objects skipped because fewer than two stable grasps were found.
    pub skipped_objects: usize,
}

enum Message {
    Done(Rollout),
    /// The episode's object has fewer than two stable grasps.
    Skipped {
        index: usize,
        slot: usize,
    },
}

struct Rollout {
    index: usize,
    rows: Vec<f32>,
    steps: usize,
    dropped: bool,
    goals: usize,
}

/// One environment's share of the episodes.
fn worker(
    model: &HandModel,
    config: &CollectConfig,
    worker: usize,
    send: &mpsc::Sender<Result<Message>>,
) -> Result<()> {
    let layout = StepLayout::for_model(model);
    let mut current: Option<(usize, dex_sim::tasks::AnygraspToAnygrasp, GraspExpert)> = None;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ worker as u64);
    let mut failed = None;
    let mut index = worker;
    while index < config.episodes {
        let slot = index / config.episodes_per_object.max(1);
        if failed == Some(slot) {
            let _ = send.send(Ok(Message::Skipped { index, slot }));
            index += config.workers;
            continue;
        }
        if current.as_ref().is_none_or(|(k, _, _)| *k != slot) {
            let object = object_for(config.seed, slot);
            match config
                .task
                .try_build(model.clone(), object, config.seed ^ slot as u64)?
            {
                Some(task) => {
                    let od = task.observation_spec().state.dim();
                    let expert = GraspExpert::new(
                        model,
                        vec![task.grasps().to_vec()],
                        od,
                        config.task.relative_scale,
                        config.expert_step,
                    )?;
                    current = Some((slot, task, expert));
                }
                None => {
                    // Too few stable grasps: the slot's episodes are skipped.
                    failed = Some(slot);
                    current = None;
                    continue;
                }
            }
        }
        let Some((_, task, expert)) = current.as_mut() else {
            continue;
        };
        let (mut obs, _) = task.reset(Some(config.seed.wrapping_mul(1_000_003) ^ index as u64))?;
        let od = obs.state.len();
        let mut rows = Vec::new();
        let mut steps = 0;
        let record =
            |task: &dex_sim::tasks::AnygraspToAnygrasp, rows: &mut Vec<f32>| -> Result<()> {
                let sim = task.simulator().ok_or_else(|| Error::InvalidSetting {
                    what: "task",
                    reason: "has no simulator".into(),
                })?;
                let q = sim.joint_state().q;
                let kp = model.keypoint_positions(&q).map_err(dex_sim::Error::from)?;
                let kp: Vec<[f64; 3]> = kp.positions.iter().map(|p| [p.x, p.y, p.z]).collect();
                rows.extend(layout.row(&kp, &q, sim.joint_targets())?);
                Ok(())
            };
        record(task, &mut rows)?;
        let (dropped, goals) = loop {
            let x = ndarray::Array2::from_shape_vec((1, od), obs.state.clone()).map_err(|e| {
                Error::InvalidSetting {
                    what: "observation",
                    reason: e.to_string(),
                }
            })?;
            let a = expert.act(x.view(), ActMode::Deterministic, &mut rng)?;
            let a: Vec<f32> = a.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            let step = task.step(&a)?;
            steps += 1;
            record(task, &mut rows)?;
            obs = step.obs;
            if step.terminated || step.truncated {
                let goals = step.info.get("goals_reached").unwrap_or(0.0) as usize;
                break (step.terminated, goals);
            }
        };
        if send
            .send(Ok(Message::Done(Rollout {
                index,
                rows,
                steps,
                dropped,
                goals,
            })))
            .is_err()
        {
            break;
        }
        index += config.workers;
    }
    Ok(())
}

/// Rolls the scripted expert out for `config.episodes` episodes on `model`, writing the
/// dataset to `out` as it goes (episodes in index order, so the files are the same for a
/// seed whatever the threads' timing). `progress` is called with the episodes done.
///
/// # Errors
///
/// Invalid settings; `out` already holding a dataset; simulation and file errors.
pub fn collect(
    model: &HandModel,
    config: &CollectConfig,
    out: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<CollectReport> {
    config.task.validate()?;
    if config.episodes == 0 || config.workers == 0 || config.episodes_per_object == 0 {
        return Err(Error::InvalidSetting {
            what: "collection",
            reason: "episodes, workers and episodes_per_object must be at least 1".into(),
        });
    }
    let mut meta = toml::Table::new();
    let settings = toml::Table::try_from(config).map_err(|e| Error::InvalidSetting {
        what: "collection settings",
        reason: e.to_string(),
    })?;
    meta.insert("collect".into(), toml::Value::Table(settings));
    meta.insert(
        "expert".into(),
        toml::Value::String("scripted grasp-to-grasp (dex_diffusion::GraspExpert)".into()),
    );
    let control_hz = 1.0 / config.task.task_config().sim_config(model).control_period();
    let mut writer = DataWriter::create(out, model, control_hz, config.chunk_rows, meta)?;
    let (send, receive) = mpsc::channel();
    let mut report = CollectReport {
        manifest: writer.manifest().clone(),
        episodes: 0,
        drops: 0,
        goals: 0,
        mean_hold_s: 0.0,
        skipped_objects: 0,
    };
    let mut hold = 0.0;
    let period = 1.0 / control_hz;
    let result = std::thread::scope(|scope| -> Result<()> {
        for w in 0..config.workers.min(config.episodes) {
            let send = send.clone();
            scope.spawn(move || {
                if let Err(e) = worker(model, config, w, &send) {
                    let _ = send.send(Err(e));
                }
            });
        }
        drop(send);
        let mut pending = BTreeMap::new();
        let mut skipped_slots = std::collections::BTreeSet::new();
        let mut next = 0;
        let mut done = 0;
        for message in receive {
            let (index, rollout) = match message? {
                Message::Skipped { index, slot } => {
                    skipped_slots.insert(slot);
                    (index, None)
                }
                Message::Done(r) => (r.index, Some(r)),
            };
            pending.insert(index, rollout);
            done += 1;
            progress(done);
            // Write in index order.
            while let Some(r) = pending.remove(&next) {
                next += 1;
                let Some(r) = r else { continue };
                report.episodes += 1;
                report.drops += usize::from(r.dropped);
                report.goals += r.goals;
                hold += r.steps as f64 * period;
                writer.push_episode(&r.rows, r.dropped, r.goals)?;
            }
        }
        report.skipped_objects = skipped_slots.len();
        Ok(())
    });
    result?;
    report.manifest = writer.finish()?;
    report.mean_hold_s = hold / report.episodes.max(1) as f64;
    Ok(report)
}
