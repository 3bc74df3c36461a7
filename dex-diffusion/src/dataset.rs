//! DexGen's dataset: expert rollouts on disk, and the training samples built from them.
//!
//! # Format (`dex-dexgen-data`, version 1)
//!
//! A dataset is a directory:
//!
//! ```text
//! DIR/dexgen.toml             the manifest: format, version, hand, dof, keypoint names,
//!                             which keypoints are fingertips, modes, control rate, the
//!                             chunks in order, and a free-form [meta] table
//! DIR/steps-000000.npy        f32, rows × step width, C order: one row per control step
//! DIR/episodes-000000.npy     i64, episodes × 4: first row (in the chunk), length,
//!                             dropped (0/1), goals reached
//! DIR/steps-000001.npy        ...
//! ```
//!
//! A step row is, for a hand of `dof` joints and `K` keypoints (all in the hand's root
//! frame, metres and radians): the `K × 3` keypoint positions at the measured joint
//! positions, the measured positions `q` (`dof`), the targets in force `q̃` (`dof`), the
//! control error `q̃ − q` (`dof`) and a one-hot mode ([`MODES`] values: default,
//! precision rotation; dex's data is all default). The targets an action sets at step `t`
//! are those in force at step `t + 1`.
//!
//! Every chunk holds whole episodes. A chunk is written whole, then the manifest is
//! rewritten (through a temporary file and a rename), so a writer that dies loses at
//! most the chunk it was filling. An episode that ends in a drop loses its last
//! [`DROP_DISCARD_STEPS`] steps before it is written (DexGen App. A: 2 s). Every file is
//! plain NumPy: `numpy.load` reads it without dex.

use std::path::{Path, PathBuf};

use dex_core::HandModel;
use dex_policy::chunk_files::{read_array, read_toml, write_array, write_toml_atomic};
use ndarray::{Array2, ArrayView2, Axis, Slice};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "dexgen.toml";
const FORMAT: &str = "dex-dexgen-data";
const VERSION: u32 = 1;
/// Mode one-hot width: default, precision rotation (DexGen §III-C).
pub const MODES: usize = 2;
/// Steps dropped from the end of an episode that ends in a drop: 2 s at 10 Hz.
pub const DROP_DISCARD_STEPS: usize = 20;

fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Where each quantity sits in a step row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLayout {
    /// Joints.
    pub dof: usize,
    /// Keypoints (K).
    pub keypoints: usize,
    /// Indices of the fingertip keypoints among them.
    pub tips: Vec<usize>,
}

impl StepLayout {
    /// The layout for `model`: its keypoints, the fingertips being those whose name ends
    /// in `_tip` (all of them if none does).
    pub fn for_model(model: &HandModel) -> Self {
        let names: Vec<&str> = model.keypoints().iter().map(|f| f.name.as_str()).collect();
        let mut tips: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].ends_with("_tip"))
            .collect();
        if tips.is_empty() {
            tips = (0..names.len()).collect();
        }
        Self {
            dof: model.dof(),
            keypoints: names.len(),
            tips,
        }
    }

    /// Values per step row.
    pub fn width(&self) -> usize {
        3 * self.keypoints + 3 * self.dof + MODES
    }

    /// Offset of the measured joint positions.
    pub fn q(&self) -> usize {
        3 * self.keypoints
    }

    /// Offset of the targets in force.
    pub fn targets(&self) -> usize {
        self.q() + self.dof
    }

    /// Offset of the control error.
    pub fn error(&self) -> usize {
        self.targets() + self.dof
    }

    /// Offset of the mode one-hot.
    pub fn mode(&self) -> usize {
        self.error() + self.dof
    }

    /// One step row from the keypoints (`K` points), measured positions and targets in
    /// force, in the default mode.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for inputs of the wrong length.
    pub fn row(&self, keypoints: &[[f64; 3]], q: &[f64], targets: &[f64]) -> Result<Vec<f32>> {
        crate::error::check_len("keypoints", self.keypoints, keypoints.len())?;
        crate::error::check_len("joint positions", self.dof, q.len())?;
        crate::error::check_len("joint targets", self.dof, targets.len())?;
        let mut row = Vec::with_capacity(self.width());
        row.extend(keypoints.iter().flatten().map(|v| *v as f32));
        row.extend(q.iter().map(|v| *v as f32));
        row.extend(targets.iter().map(|v| *v as f32));
        row.extend(q.iter().zip(targets).map(|(q, t)| (t - q) as f32));
        row.push(1.0);
        row.extend(std::iter::repeat_n(0.0, MODES - 1));
        Ok(row)
    }
}

/// One chunk's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    /// The steps file, relative to the directory.
    pub steps: String,
    /// The episodes file.
    pub episodes: String,
    /// Step rows in it.
    pub rows: usize,
    /// Episodes in it.
    pub episode_count: usize,
}

/// The contents of `dexgen.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `dex-dexgen-data`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The hand's name.
    pub hand: String,
    /// Row layout.
    pub layout: StepLayout,
    /// Keypoint names, in row order.
    pub keypoint_names: Vec<String>,
    /// Control rate (Hz).
    pub control_hz: f64,
    /// Steps cut from the end of an episode that ended in a drop.
    pub drop_discard_steps: usize,
    /// The chunks, in order.
    pub chunks: Vec<ChunkEntry>,
    /// Free-form description (task settings, expert, seed, ...).
    #[serde(default)]
    pub meta: toml::Table,
}

impl Manifest {
    /// Step rows in the whole dataset.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.rows).sum()
    }

    /// Episodes in the whole dataset.
    pub fn episodes(&self) -> usize {
        self.chunks.iter().map(|c| c.episode_count).sum()
    }
}

/// An episode of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeEntry {
    /// Its first row in the chunk.
    pub first: usize,
    /// Its length in steps (after the drop cut).
    pub len: usize,
    /// Whether it ended in a drop.
    pub dropped: bool,
    /// Goals reached.
    pub goals: usize,
}

/// One chunk in memory.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// `rows × width` step rows.
    pub steps: Array2<f32>,
    /// Its episodes.
    pub episodes: Vec<EpisodeEntry>,
}

/// Writes a dataset while it is collected.
#[derive(Debug)]
pub struct DataWriter {
    dir: PathBuf,
    manifest: Manifest,
    chunk_rows: usize,
    steps: Vec<f32>,
    episodes: Vec<[i64; 4]>,
}

impl DataWriter {
    /// Creates an empty dataset for `model` in `dir` (created if needed; it must not hold
    /// one yet), starting a chunk every `chunk_rows` rows (at an episode's end).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for `chunk_rows` 0; [`Error::Data`] when `dir` holds a
    /// dataset or cannot be written.
    pub fn create(
        dir: &Path,
        model: &HandModel,
        control_hz: f64,
        chunk_rows: usize,
        meta: toml::Table,
    ) -> Result<Self> {
        if chunk_rows == 0 {
            return Err(Error::InvalidSetting {
                what: "chunk_rows",
                reason: "must be at least 1".into(),
            });
        }
        if dir.join(MANIFEST).exists() {
            return Err(data_error(dir, "already holds a dataset"));
        }
        std::fs::create_dir_all(dir).map_err(|e| data_error(dir, e.to_string()))?;
        let writer = Self {
            dir: dir.to_path_buf(),
            manifest: Manifest {
                format: FORMAT.into(),
                version: VERSION,
                hand: model.name().to_string(),
                layout: StepLayout::for_model(model),
                keypoint_names: model.keypoints().iter().map(|f| f.name.clone()).collect(),
                control_hz,
                drop_discard_steps: DROP_DISCARD_STEPS,
                chunks: Vec::new(),
                meta,
            },
            chunk_rows,
            steps: Vec::new(),
            episodes: Vec::new(),
        };
        writer.write_manifest()?;
        Ok(writer)
    }

    /// The manifest so far.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Adds an episode's step rows (`len × width`, flattened). An episode that ended in
    /// a drop loses its last [`DROP_DISCARD_STEPS`] rows (all of them if it is shorter).
    /// Writes a chunk when enough rows are pending.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for rows of the wrong width; [`Error::NotFinite`] for
    /// NaN; [`Error::Data`] when a chunk cannot be written.
    pub fn push_episode(&mut self, rows: &[f32], dropped: bool, goals: usize) -> Result<()> {
        let width = self.manifest.layout.width();
        if !rows.len().is_multiple_of(width) {
            return Err(Error::LengthMismatch {
                what: "episode rows (a multiple of the step width)",
                expected: width,
                got: rows.len(),
            });
        }
        crate::error::check_finite("episode rows", rows.iter())?;
        let mut len = rows.len() / width;
        if dropped {
            len = len.saturating_sub(DROP_DISCARD_STEPS);
        }
        if len > 0 {
            let first = self.steps.len() / width;
            self.steps.extend_from_slice(&rows[..len * width]);
            self.episodes
                .push([first as i64, len as i64, i64::from(dropped), goals as i64]);
        }
        if self.steps.len() / width >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending episodes as a chunk (nothing if none).
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when a file cannot be written.
    pub fn flush(&mut self) -> Result<()> {
        if self.episodes.is_empty() {
            return Ok(());
        }
        let width = self.manifest.layout.width();
        let rows = self.steps.len() / width;
        let k = self.manifest.chunks.len();
        let entry = ChunkEntry {
            steps: format!("steps-{k:06}.npy"),
            episodes: format!("episodes-{k:06}.npy"),
            rows,
            episode_count: self.episodes.len(),
        };
        let steps = Array2::from_shape_vec((rows, width), std::mem::take(&mut self.steps))
            .map_err(|e| data_error(&self.dir, e.to_string()))?;
        let episodes =
            Array2::from_shape_fn((self.episodes.len(), 4), |(i, j)| self.episodes[i][j]);
        self.episodes.clear();
        write_array(&self.dir.join(&entry.steps), &steps)?;
        write_array(&self.dir.join(&entry.episodes), &episodes)?;
        self.manifest.chunks.push(entry);
        self.write_manifest()
    }

    /// Writes what is pending and returns the manifest.
    ///
    /// # Errors
    ///
    /// As [`DataWriter::flush`].
    pub fn finish(mut self) -> Result<Manifest> {
        self.flush()?;
        Ok(self.manifest)
    }

    fn write_manifest(&self) -> Result<()> {
        Ok(write_toml_atomic(&self.dir.join(MANIFEST), &self.manifest)?)
    }
}

/// Reads a dataset, one chunk at a time.
#[derive(Debug, Clone)]
pub struct DataReader {
    dir: PathBuf,
    manifest: Manifest,
}

impl DataReader {
    /// Opens the dataset in `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] naming the file for a missing or unreadable manifest, another
    /// format or version.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let manifest: Manifest = read_toml(&path)?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(data_error(
                &path,
                format!(
                    "is {} version {}, expected {FORMAT} version {VERSION}",
                    manifest.format, manifest.version
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Chunks in the dataset.
    pub fn chunks(&self) -> usize {
        self.manifest.chunks.len()
    }

    /// Loads chunk `k`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for `k` out of range; [`Error::Data`] naming the file
    /// for a missing, truncated or inconsistent chunk.
    pub fn chunk(&self, k: usize) -> Result<Chunk> {
        let entry = self
            .manifest
            .chunks
            .get(k)
            .ok_or_else(|| Error::InvalidSetting {
                what: "chunk index",
                reason: format!("{k} is past the dataset's {} chunks", self.chunks()),
            })?;
        let width = self.manifest.layout.width();
        let steps: Array2<f32> = read_array(&self.dir.join(&entry.steps), entry.rows, width)?;
        let path = self.dir.join(&entry.episodes);
        let table: Array2<i64> = read_array(&path, entry.episode_count, 4)?;
        let mut episodes = Vec::with_capacity(table.nrows());
        for r in table.rows() {
            let (first, len) = (r[0], r[1]);
            if first < 0 || len <= 0 || (first + len) as usize > entry.rows {
                return Err(data_error(
                    &path,
                    format!("episode rows {first}..{} outside the chunk", first + len),
                ));
            }
            episodes.push(EpisodeEntry {
                first: first as usize,
                len: len as usize,
                dropped: r[2] != 0,
                goals: r[3].max(0) as usize,
            });
        }
        Ok(Chunk { steps, episodes })
    }
}

/// Which keypoints a motion covers: DexGen's 8, or the fingertips alone (the K = 4
/// ablation of App. F).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeypointSet {
    /// Every keypoint (middle joint and tip of each finger).
    #[default]
    All,
    /// The fingertips only.
    Tips,
}

/// Whose keypoints a motion Δx follows.
///
/// DexGen (§III-C) writes Δxᵢ = x_{t+i} − x_t of the finger keypoints. Measured at the
/// joints, a finger pressing on an object hardly moves whatever its target does, so
/// over 0.1–0.2 s the motion says little about the targets that caused it: on dex's
/// expert data an inverse dynamics model from the measured motion and the state
/// predicts the target changes no better than one from the state alone (held-out MSE
/// 0.48 against 0.44, normalised), i.e. it ignores the motion, and guidance then cannot
/// reach the joints. The keypoints of the targets in force, `FK_K(q̃)`, move exactly as
/// the targets do (held-out MSE 0.08): the prior is then over where the expert sends
/// the fingers, the inverse dynamics is nearly kinematic, and a command measured from
/// the targets ([`crate::CommandReference::Targets`]) is the same kind of quantity.
/// Figures: `cargo run --release -p dex-diffusion --example idm_inputs -- DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MotionOf {
    /// The keypoints at the measured joint positions (the paper's wording).
    Measured,
    /// The keypoints at the targets in force (dex's default).
    #[default]
    Targets,
}

impl MotionOf {
    /// What a model file without the setting used (written before it existed).
    fn legacy() -> Self {
        MotionOf::Measured
    }
}

/// How samples are cut from episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleSpec {
    /// Steps of proprioception history in the condition (DexGen: 4).
    pub history: usize,
    /// Future steps of the motion (DexGen: T = 2).
    pub horizon: usize,
    /// Keypoints of the motion.
    pub keypoints: KeypointSet,
    /// Whose keypoints the motion follows (absent from a file: `measured`, what files
    /// written before this setting used).
    #[serde(default = "MotionOf::legacy")]
    pub motion: MotionOf,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            history: 4,
            horizon: 2,
            keypoints: KeypointSet::All,
            motion: MotionOf::Targets,
        }
    }
}

impl SampleSpec {
    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero history or horizon.
    pub fn validate(&self) -> Result<()> {
        if self.history == 0 || self.horizon == 0 {
            return Err(Error::InvalidSetting {
                what: "sample spec",
                reason: "history and horizon must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// Keypoint indices of the motion.
    pub fn motion_keypoints(&self, layout: &StepLayout) -> Vec<usize> {
        match self.keypoints {
            KeypointSet::All => (0..layout.keypoints).collect(),
            KeypointSet::Tips => layout.tips.clone(),
        }
    }

    /// Values of one history step: fingertips, q, q̃ and q̃ − q (DexGen App. F).
    pub fn step_dim(&self, layout: &StepLayout) -> usize {
        3 * layout.tips.len() + 3 * layout.dof
    }

    /// Width of a condition: `history` steps and the mode.
    pub fn condition_dim(&self, layout: &StepLayout) -> usize {
        self.history * self.step_dim(layout) + MODES
    }

    /// Width of a motion: `horizon × K' × 3`.
    pub fn motion_dim(&self, layout: &StepLayout) -> usize {
        self.horizon * self.motion_keypoints(layout).len() * 3
    }

    /// Appends one history step from a step row.
    pub fn push_state(&self, layout: &StepLayout, row: &[f32], out: &mut Vec<f32>) {
        for &k in &layout.tips {
            out.extend_from_slice(&row[3 * k..3 * k + 3]);
        }
        out.extend_from_slice(&row[layout.q()..layout.mode()]);
    }
}

/// `rows × 3K`: the keypoints at each row's targets in force.
fn target_keypoints(
    hand: &HandModel,
    steps: ArrayView2<'_, f32>,
    layout: &StepLayout,
) -> Result<Array2<f32>> {
    let mut out = Array2::zeros((steps.nrows(), 3 * layout.keypoints));
    let mut q = vec![0.0; layout.dof];
    for (r, row) in steps.rows().into_iter().enumerate() {
        for (j, v) in q.iter_mut().enumerate() {
            *v = f64::from(row[layout.targets() + j]);
        }
        let kp = hand
            .keypoint_positions(&q)
            .map_err(|e| Error::Sim(dex_sim::Error::from(e)))?;
        for (k, p) in kp.positions.iter().enumerate() {
            for c in 0..3 {
                out[[r, 3 * k + c]] = p[c] as f32;
            }
        }
    }
    Ok(out)
}

/// The hand model a dataset's manifest names, when `spec` needs its kinematics.
///
/// # Errors
///
/// [`Error::InvalidSetting`] when the motion follows the targets and the hand is not a
/// built-in one (or a URDF file at that path).
pub fn hand_for(manifest: &Manifest, spec: &SampleSpec) -> Result<Option<HandModel>> {
    match spec.motion {
        MotionOf::Measured => Ok(None),
        MotionOf::Targets => {
            HandModel::load(&manifest.hand)
                .map(Some)
                .map_err(|e| Error::InvalidSetting {
                    what: "dataset hand",
                    reason: format!(
                        "motions of the target keypoints need the hand's kinematics: {e}"
                    ),
                })
        }
    }
}

/// Training samples: one row per (episode, step) with a full future.
#[derive(Debug, Clone)]
pub struct Samples {
    /// `N × condition_dim`: history newest first, then the mode.
    pub condition: Array2<f32>,
    /// `N × motion_dim`: Δxᵢ = x_{t+i} − x_t, i = 1..=horizon, keypoint-major.
    pub motion: Array2<f32>,
    /// `N × dof`: the targets the expert set at t minus those in force at t.
    pub target_change: Array2<f32>,
}

impl Samples {
    /// Samples of `chunk`. Steps before an episode's start repeat its first step.
    /// `hand` gives the keypoints of the targets ([`MotionOf::Targets`]; unused for
    /// measured motions).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if the chunk's width does not match `layout`;
    /// [`Error::InvalidSetting`] for target motions without a hand of `layout`'s shape.
    pub fn from_chunk(
        chunk: &Chunk,
        layout: &StepLayout,
        spec: &SampleSpec,
        hand: Option<&HandModel>,
    ) -> Result<Self> {
        spec.validate()?;
        crate::error::check_len("step width", layout.width(), chunk.steps.ncols())?;
        let target_keypoints = match (spec.motion, hand) {
            (MotionOf::Measured, _) => None,
            (MotionOf::Targets, Some(hand)) if &StepLayout::for_model(hand) == layout => {
                Some(target_keypoints(hand, chunk.steps.view(), layout)?)
            }
            (MotionOf::Targets, _) => {
                return Err(Error::InvalidSetting {
                    what: "samples",
                    reason: "motions of the target keypoints need the dataset's hand model".into(),
                });
            }
        };
        // The rows whose keypoints the motion follows.
        let moving = target_keypoints
            .as_ref()
            .map_or(chunk.steps.view(), |t| t.view());
        let kp = spec.motion_keypoints(layout);
        let (cd, md) = (spec.condition_dim(layout), spec.motion_dim(layout));
        let mut condition = Vec::new();
        let mut motion = Vec::new();
        let mut change = Vec::new();
        let mut n = 0;
        for e in &chunk.episodes {
            let rows: ArrayView2<'_, f32> = chunk
                .steps
                .slice_axis(Axis(0), Slice::from(e.first..e.first + e.len));
            // Step t needs t + horizon in the episode (and t + 1 for the target).
            let last = e.len.saturating_sub(spec.horizon.max(1));
            for t in 0..last {
                for h in 0..spec.history {
                    let r = rows.row(t.saturating_sub(h));
                    let r = r.as_slice().unwrap_or(&[]);
                    spec.push_state(layout, r, &mut condition);
                }
                let now = rows.row(t);
                condition.extend((layout.mode()..layout.width()).map(|j| now[j]));
                let x_now = moving.row(e.first + t);
                for i in 1..=spec.horizon {
                    let future = moving.row(e.first + t + i);
                    for &k in &kp {
                        for c in 0..3 {
                            motion.push(future[3 * k + c] - x_now[3 * k + c]);
                        }
                    }
                }
                let next = rows.row(t + 1);
                for j in 0..layout.dof {
                    change.push(next[layout.targets() + j] - now[layout.targets() + j]);
                }
                n += 1;
            }
        }
        let shape_err = |e: ndarray::ShapeError| Error::InvalidSetting {
            what: "samples",
            reason: e.to_string(),
        };
        Ok(Self {
            condition: Array2::from_shape_vec((n, cd), condition).map_err(shape_err)?,
            motion: Array2::from_shape_vec((n, md), motion).map_err(shape_err)?,
            target_change: Array2::from_shape_vec((n, layout.dof), change).map_err(shape_err)?,
        })
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.condition.nrows()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
