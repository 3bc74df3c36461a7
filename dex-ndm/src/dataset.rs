//! Joint trajectories on disk and in memory: what a hand did with the targets it was
//! sent.
//!
//! # Format (`dex-ndm-data`, version 1)
//!
//! A dataset is a directory:
//!
//! ```text
//! DIR/ndm.toml                the manifest: format, version, hand, joint names, control
//!                             rate, the chunks in order, and a free-form [meta] table
//!                             (where it was collected, gravity, object, seed, ...)
//! DIR/steps-000000.npy        f32, rows × 2·dof, C order: one row per control step
//! DIR/segments-000000.npy     i64, segments × 2: first row (in the chunk), length
//! DIR/steps-000001.npy        ...
//! ```
//!
//! Row `t` of a segment holds the joint positions `q_t` (rad) measured at control step
//! `t`, then the position targets `a_t` (rad) sent right after that measurement, so
//! `q_{t+1}` (the next row) is how the joints answered `a_t`. A segment is a run of
//! consecutive control steps (one replayed action sequence); the hand is not reset
//! between segments, but a model's history never crosses a segment boundary.
//!
//! Every chunk holds whole segments. A chunk is written whole, then the manifest is
//! rewritten through a temporary file and a rename, so a collector that dies loses at
//! most the chunk it was filling. Every file is plain NumPy: `numpy.load` reads it
//! without dex.

use std::path::{Path, PathBuf};

use dex_policy::chunk_files::{read_array, read_toml, write_array, write_toml_atomic};
use ndarray::{Array2, ArrayView2, Axis, Slice};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite, data_error};

/// The manifest's file name.
pub const MANIFEST: &str = "ndm.toml";
const FORMAT: &str = "dex-ndm-data";
const VERSION: u32 = 1;

/// One chunk's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    /// The steps file, relative to the directory.
    pub steps: String,
    /// The segments file.
    pub segments: String,
    /// Step rows in it.
    pub rows: usize,
    /// Segments in it.
    pub segment_count: usize,
}

/// The contents of `ndm.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `dex-ndm-data`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The hand's name.
    pub hand: String,
    /// Joint names, in column order.
    pub joint_names: Vec<String>,
    /// Control rate (Hz).
    pub control_hz: f64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkEntry>,
    /// Free-form description (source, gravity, object, gap, seed, ...).
    #[serde(default)]
    pub meta: toml::Table,
}

impl Manifest {
    /// Step rows in the whole dataset.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.rows).sum()
    }

    /// Segments in the whole dataset.
    pub fn segments(&self) -> usize {
        self.chunks.iter().map(|c| c.segment_count).sum()
    }
}

/// A run of consecutive control steps: `len × 2·dof` rows of `[q_t, a_t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    dof: usize,
    steps: Vec<f32>,
}

impl Segment {
    /// An empty segment for `dof` joints.
    pub fn new(dof: usize) -> Self {
        Self {
            dof,
            steps: Vec::new(),
        }
    }

    /// A segment from `len × 2·dof` rows.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] unless the rows are `2·dof` wide; [`Error::NotFinite`].
    pub fn from_rows(dof: usize, rows: ArrayView2<'_, f32>) -> Result<Self> {
        if rows.ncols() != 2 * dof {
            return Err(Error::LengthMismatch {
                what: "segment row width (2·dof)",
                expected: 2 * dof,
                got: rows.ncols(),
            });
        }
        check_finite("segment rows", rows.iter())?;
        Ok(Self {
            dof,
            steps: rows.iter().copied().collect(),
        })
    }

    /// Appends control step `(q_t, a_t)`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] unless both have `dof` values; [`Error::NotFinite`].
    pub fn push(&mut self, q: &[f64], targets: &[f64]) -> Result<()> {
        for (what, v) in [("joint positions", q), ("joint targets", targets)] {
            if v.len() != self.dof {
                return Err(Error::LengthMismatch {
                    what,
                    expected: self.dof,
                    got: v.len(),
                });
            }
            check_finite(what, v.iter())?;
        }
        self.steps.extend(q.iter().map(|&x| x as f32));
        self.steps.extend(targets.iter().map(|&x| x as f32));
        Ok(())
    }

    /// Joints.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// Control steps.
    pub fn len(&self) -> usize {
        self.steps.len() / (2 * self.dof).max(1)
    }

    /// Whether it holds no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `q_t` of step `t`.
    pub fn q(&self, t: usize) -> &[f32] {
        let w = 2 * self.dof;
        &self.steps[t * w..t * w + self.dof]
    }

    /// `a_t` of step `t`.
    pub fn targets(&self, t: usize) -> &[f32] {
        let w = 2 * self.dof;
        &self.steps[t * w + self.dof..(t + 1) * w]
    }
}

/// Writes a dataset while it is collected.
#[derive(Debug)]
pub struct DataWriter {
    dir: PathBuf,
    manifest: Manifest,
    chunk_rows: usize,
    steps: Vec<f32>,
    segments: Vec<[i64; 2]>,
}

impl DataWriter {
    /// Creates an empty dataset in `dir` (created if needed; it must not hold one yet)
    /// for a hand called `hand` with `joint_names`, starting a chunk every `chunk_rows`
    /// rows (at a segment's end).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for no joints, `chunk_rows` 0 or a rate that is not
    /// positive; [`Error::Data`] when `dir` holds a dataset or cannot be written.
    pub fn create(
        dir: &Path,
        hand: &str,
        joint_names: Vec<String>,
        control_hz: f64,
        chunk_rows: usize,
        meta: toml::Table,
    ) -> Result<Self> {
        if chunk_rows == 0 || joint_names.is_empty() || !control_hz.is_finite() || control_hz <= 0.0
        {
            return Err(Error::InvalidSetting {
                what: "dataset writer",
                reason: format!(
                    "needs joints, chunk_rows ≥ 1 and a positive rate, got {} joints, {chunk_rows}, {control_hz} Hz",
                    joint_names.len()
                ),
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
                hand: hand.into(),
                joint_names,
                control_hz,
                chunks: Vec::new(),
                meta,
            },
            chunk_rows,
            steps: Vec::new(),
            segments: Vec::new(),
        };
        writer.write_manifest()?;
        Ok(writer)
    }

    /// The manifest so far.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Adds a segment (an empty one is skipped); writes a chunk when enough rows are
    /// pending.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for a segment of another joint count; [`Error::Data`]
    /// when a chunk cannot be written.
    pub fn push_segment(&mut self, segment: &Segment) -> Result<()> {
        let dof = self.manifest.joint_names.len();
        if segment.dof() != dof {
            return Err(Error::LengthMismatch {
                what: "segment joints",
                expected: dof,
                got: segment.dof(),
            });
        }
        if !segment.is_empty() {
            let first = self.steps.len() / (2 * dof);
            self.steps.extend_from_slice(&segment.steps);
            self.segments.push([first as i64, segment.len() as i64]);
        }
        if self.steps.len() / (2 * dof) >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending segments as a chunk (nothing if none).
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when a file cannot be written.
    pub fn flush(&mut self) -> Result<()> {
        if self.segments.is_empty() {
            return Ok(());
        }
        let width = 2 * self.manifest.joint_names.len();
        let rows = self.steps.len() / width;
        let k = self.manifest.chunks.len();
        let entry = ChunkEntry {
            steps: format!("steps-{k:06}.npy"),
            segments: format!("segments-{k:06}.npy"),
            rows,
            segment_count: self.segments.len(),
        };
        let steps = Array2::from_shape_vec((rows, width), std::mem::take(&mut self.steps))
            .map_err(|e| data_error(&self.dir, e.to_string()))?;
        let segments =
            Array2::from_shape_fn((self.segments.len(), 2), |(i, j)| self.segments[i][j]);
        self.segments.clear();
        write_array(&self.dir.join(&entry.steps), &steps)?;
        write_array(&self.dir.join(&entry.segments), &segments)?;
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

/// A whole dataset in memory (the datasets DexNDM's models learn from are small: a
/// million control steps of a 16-joint hand are 128 MB).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The hand's name.
    pub hand: String,
    /// Joint names, in column order.
    pub joint_names: Vec<String>,
    /// Control rate (Hz).
    pub control_hz: f64,
    /// The segments.
    pub segments: Vec<Segment>,
    /// The manifest's `[meta]` table.
    pub meta: toml::Table,
}

impl Dataset {
    /// An empty dataset.
    pub fn new(hand: &str, joint_names: Vec<String>, control_hz: f64) -> Self {
        Self {
            hand: hand.into(),
            joint_names,
            control_hz,
            segments: Vec::new(),
            meta: toml::Table::new(),
        }
    }

    /// Joints.
    pub fn dof(&self) -> usize {
        self.joint_names.len()
    }

    /// Control steps in all segments.
    pub fn steps(&self) -> usize {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Reads the dataset in `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] naming the file for a missing or unreadable manifest, another
    /// format or version, a missing, truncated or mis-shaped chunk, segments outside
    /// their chunk, or a NaN.
    pub fn load(dir: &Path) -> Result<Self> {
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
        let dof = manifest.joint_names.len();
        if dof == 0 {
            return Err(data_error(&path, "names no joints"));
        }
        let mut data = Self::new(
            &manifest.hand,
            manifest.joint_names.clone(),
            manifest.control_hz,
        );
        data.meta = manifest.meta.clone();
        for entry in &manifest.chunks {
            let path = dir.join(&entry.steps);
            let steps: Array2<f32> = read_array(&path, entry.rows, 2 * dof)?;
            if let Some(i) = steps.iter().position(|v| !v.is_finite()) {
                return Err(data_error(&path, format!("value {i} is not finite")));
            }
            let path = dir.join(&entry.segments);
            let table: Array2<i64> = read_array(&path, entry.segment_count, 2)?;
            for r in table.rows() {
                let (first, len) = (r[0], r[1]);
                if first < 0 || len <= 0 || (first + len) as usize > entry.rows {
                    return Err(data_error(
                        &path,
                        format!("segment rows {first}..{} outside the chunk", first + len),
                    ));
                }
                let rows =
                    steps.slice_axis(Axis(0), Slice::from(first as usize..(first + len) as usize));
                data.segments.push(Segment::from_rows(dof, rows)?);
            }
        }
        Ok(data)
    }

    /// Writes the dataset to `dir` (as [`DataWriter`] does, chunks of about
    /// `chunk_rows` rows).
    ///
    /// # Errors
    ///
    /// As [`DataWriter::create`] and [`DataWriter::push_segment`].
    pub fn save(&self, dir: &Path, chunk_rows: usize) -> Result<Manifest> {
        let mut w = DataWriter::create(
            dir,
            &self.hand,
            self.joint_names.clone(),
            self.control_hz,
            chunk_rows,
            self.meta.clone(),
        )?;
        for s in &self.segments {
            w.push_segment(s)?;
        }
        w.finish()
    }

    /// The same dataset with only the segments `keep` selects.
    pub fn select(&self, keep: impl Fn(usize) -> bool) -> Self {
        Self {
            segments: self
                .segments
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, s)| s.clone())
                .collect(),
            ..self.clone_header()
        }
    }

    /// Splits the segments at random (seeded) into a training and a held-out part, the
    /// held-out part `fraction` of them (at least one when there are two or more).
    pub fn split(&self, fraction: f64, seed: u64) -> (Self, Self) {
        let n = self.segments.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let mut held = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        if held == 0 && n >= 2 && fraction > 0.0 {
            held = 1;
        }
        let mut is_held = vec![false; n];
        for &i in &order[..held.min(n)] {
            is_held[i] = true;
        }
        (self.select(|i| !is_held[i]), self.select(|i| is_held[i]))
    }

    fn clone_header(&self) -> Self {
        Self {
            hand: self.hand.clone(),
            joint_names: self.joint_names.clone(),
            control_hz: self.control_hz,
            segments: Vec::new(),
            meta: self.meta.clone(),
        }
    }

    /// Every `(segment, t)` that has a full `window`-step history ending at `t` and a
    /// next step `t + 1`: the samples a model of history `window` learns from.
    pub fn sample_index(&self, window: usize) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for (s, seg) in self.segments.iter().enumerate() {
            for t in window.saturating_sub(1)..seg.len().saturating_sub(1) {
                out.push((s as u32, t as u32));
            }
        }
        out
    }

    /// Gathers samples into a [`Batch`] of history `window`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an index outside the dataset or without a full
    /// history.
    pub fn batch(&self, window: usize, index: &[(u32, u32)]) -> Result<Batch> {
        let dof = self.dof();
        let mut b = Batch::with_capacity(index.len(), window, dof);
        for &(s, t) in index {
            let (s, t) = (s as usize, t as usize);
            let seg = self
                .segments
                .get(s)
                .filter(|seg| t + 1 < seg.len() && t + 1 >= window && window > 0)
                .ok_or_else(|| Error::InvalidSetting {
                    what: "sample index",
                    reason: format!(
                        "segment {s} step {t} has no {window}-step history and next step"
                    ),
                })?;
            for j in t + 1 - window..=t {
                b.q.extend_from_slice(seg.q(j));
                b.targets.extend_from_slice(seg.targets(j));
            }
            b.next.extend_from_slice(seg.q(t + 1));
        }
        b.len = index.len();
        Ok(b)
    }
}

/// Histories and their next joint positions, flattened C-order: `q` and `targets` are
/// `len × window × dof`, `next` is `len × dof`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Samples.
    pub len: usize,
    /// History steps per sample.
    pub window: usize,
    /// Joints.
    pub dof: usize,
    /// Measured positions, oldest step first.
    pub q: Vec<f32>,
    /// Targets sent at those steps.
    pub targets: Vec<f32>,
    /// The positions measured one step after the last history step.
    pub next: Vec<f32>,
}

impl Batch {
    fn with_capacity(len: usize, window: usize, dof: usize) -> Self {
        Self {
            len: 0,
            window,
            dof,
            q: Vec::with_capacity(len * window * dof),
            targets: Vec::with_capacity(len * window * dof),
            next: Vec::with_capacity(len * dof),
        }
    }
}
