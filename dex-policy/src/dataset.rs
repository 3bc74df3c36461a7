//! Datasets of (observation, action) pairs on disk, for behaviour cloning and DAgger.
//!
//! # Format (version 1)
//!
//! A dataset is a directory:
//!
//! ```text
//! DIR/dataset.toml               format = "dex-dataset", version = 1,
//!                                observation_dim, action_dim, chunks = [rows, ...],
//!                                and a free-form [meta] table (task, hand, teacher, ...)
//! DIR/observations-000000.npy    f32, rows × observation_dim, little-endian, C order
//! DIR/actions-000000.npy         f32, rows × action_dim
//! DIR/observations-000001.npy    ...
//! ```
//!
//! Every chunk is a plain NumPy `.npy` file (`numpy.load` reads it), so datasets can be
//! inspected and used outside dex. Rows of chunk `k` follow those of chunk `k − 1`.
//! Chunks are written whole and `dataset.toml` is rewritten after each one, so an
//! interrupted writer leaves a readable dataset of the chunks it finished. Readers load
//! one chunk at a time ([`Dataset::chunk`]) or everything ([`Dataset::load_all`]).

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, Axis, concatenate};
use ndarray_npy::{read_npy, write_npy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};

const META_FILE: &str = "dataset.toml";
const FORMAT: &str = "dex-dataset";
const VERSION: u32 = 1;

/// The contents of `dataset.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMeta {
    /// Always `dex-dataset`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Values per observation row.
    pub observation_dim: usize,
    /// Values per action row.
    pub action_dim: usize,
    /// Rows of every chunk, in order.
    pub chunks: Vec<usize>,
    /// Free-form description (task, hand, teacher checkpoint, ...).
    #[serde(default)]
    pub meta: toml::Table,
}

impl DatasetMeta {
    /// Rows in the whole dataset.
    pub fn rows(&self) -> usize {
        self.chunks.iter().sum()
    }
}

fn chunk_paths(dir: &Path, k: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("observations-{k:06}.npy")),
        dir.join(format!("actions-{k:06}.npy")),
    )
}

fn dataset_error(dir: &Path, reason: impl Into<String>) -> Error {
    Error::Dataset {
        path: dir.display().to_string(),
        reason: reason.into(),
    }
}

/// Appends rows to a dataset directory, writing a chunk every `chunk_rows` rows.
#[derive(Debug)]
pub struct DatasetWriter {
    dir: PathBuf,
    meta: DatasetMeta,
    chunk_rows: usize,
    observations: Vec<f32>,
    actions: Vec<f32>,
}

impl DatasetWriter {
    /// Creates a new, empty dataset in `dir` (created if needed; it must not hold a
    /// dataset already).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for zero sizes, [`Error::Dataset`] when `dir` already
    /// holds a dataset or cannot be written.
    pub fn create(
        dir: &Path,
        observation_dim: usize,
        action_dim: usize,
        chunk_rows: usize,
        meta: toml::Table,
    ) -> Result<Self> {
        if observation_dim == 0 || action_dim == 0 || chunk_rows == 0 {
            return Err(invalid(
                "a dataset needs positive observation and action widths and chunk size",
            ));
        }
        if dir.join(META_FILE).exists() {
            return Err(dataset_error(
                dir,
                "already holds a dataset (open it with DatasetWriter::append)",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| dataset_error(dir, e.to_string()))?;
        let writer = Self {
            dir: dir.to_path_buf(),
            meta: DatasetMeta {
                format: FORMAT.into(),
                version: VERSION,
                observation_dim,
                action_dim,
                chunks: Vec::new(),
                meta,
            },
            chunk_rows,
            observations: Vec::new(),
            actions: Vec::new(),
        };
        writer.write_meta()?;
        Ok(writer)
    }

    /// Opens an existing dataset to add rows after its last chunk.
    ///
    /// # Errors
    ///
    /// As [`Dataset::open`]; [`Error::InvalidInput`] for a zero chunk size.
    pub fn append(dir: &Path, chunk_rows: usize) -> Result<Self> {
        if chunk_rows == 0 {
            return Err(invalid("chunk_rows must be positive"));
        }
        let existing = Dataset::open(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta: existing.meta,
            chunk_rows,
            observations: Vec::new(),
            actions: Vec::new(),
        })
    }

    /// The dataset's description so far (rows of written chunks only).
    pub fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    /// Rows written or buffered.
    pub fn rows(&self) -> usize {
        self.meta.rows() + self.actions.len() / self.meta.action_dim
    }

    /// Adds rows (`B × observation_dim`, `B × action_dim`); full chunks go to disk.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for mismatched shapes or non-finite values (nothing is
    /// added then), [`Error::Dataset`] when a chunk cannot be written.
    pub fn push(
        &mut self,
        observations: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
    ) -> Result<()> {
        let (b, od) = observations.dim();
        let (b2, ad) = actions.dim();
        if b != b2 || od != self.meta.observation_dim || ad != self.meta.action_dim {
            return Err(invalid(format!(
                "dataset rows: got {b}×{od} observations and {b2}×{ad} actions, expected \
                 N×{} and N×{}",
                self.meta.observation_dim, self.meta.action_dim
            )));
        }
        if let Some(pos) = observations
            .iter()
            .chain(actions.iter())
            .position(|v| !v.is_finite())
        {
            return Err(invalid(format!(
                "dataset rows: non-finite value (flat index {pos} of observations then actions)"
            )));
        }
        self.observations.extend(observations.iter());
        self.actions.extend(actions.iter());
        while self.actions.len() / ad >= self.chunk_rows {
            self.write_chunk(self.chunk_rows)?;
        }
        Ok(())
    }

    /// Writes the buffered rows as a (possibly short) chunk, so readers see every row
    /// pushed so far.
    ///
    /// # Errors
    ///
    /// [`Error::Dataset`] when the chunk or the description cannot be written.
    pub fn flush(&mut self) -> Result<()> {
        let rows = self.actions.len() / self.meta.action_dim;
        if rows > 0 {
            self.write_chunk(rows)?;
        }
        Ok(())
    }

    /// Flushes and returns the final description.
    ///
    /// # Errors
    ///
    /// As [`DatasetWriter::flush`].
    pub fn finish(mut self) -> Result<DatasetMeta> {
        self.flush()?;
        Ok(self.meta)
    }

    fn write_chunk(&mut self, rows: usize) -> Result<()> {
        let (od, ad) = (self.meta.observation_dim, self.meta.action_dim);
        let obs: Vec<f32> = self.observations.drain(..rows * od).collect();
        let act: Vec<f32> = self.actions.drain(..rows * ad).collect();
        let shape = Error::Shape;
        let obs = Array2::from_shape_vec((rows, od), obs).map_err(shape)?;
        let act = Array2::from_shape_vec((rows, ad), act).map_err(shape)?;
        let (po, pa) = chunk_paths(&self.dir, self.meta.chunks.len());
        write_npy(&po, &obs).map_err(|e| dataset_error(&po, e.to_string()))?;
        write_npy(&pa, &act).map_err(|e| dataset_error(&pa, e.to_string()))?;
        self.meta.chunks.push(rows);
        self.write_meta()
    }

    fn write_meta(&self) -> Result<()> {
        let text = toml::to_string(&self.meta).map_err(|e| invalid(e.to_string()))?;
        let path = self.dir.join(META_FILE);
        std::fs::write(&path, text).map_err(|e| dataset_error(&path, e.to_string()))
    }
}

/// A dataset on disk, opened for reading.
#[derive(Debug, Clone)]
pub struct Dataset {
    dir: PathBuf,
    meta: DatasetMeta,
}

impl Dataset {
    /// Opens `dir`, checking its description.
    ///
    /// # Errors
    ///
    /// [`Error::Dataset`] for a missing or malformed `dataset.toml`, another format or
    /// version, or a missing chunk file.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| dataset_error(dir, format!("reading {META_FILE}: {e}")))?;
        let meta: DatasetMeta = toml::from_str(&text)
            .map_err(|e| dataset_error(dir, format!("parsing {META_FILE}: {e}")))?;
        if meta.format != FORMAT || meta.version != VERSION {
            return Err(dataset_error(
                dir,
                format!(
                    "format {} version {}, expected {FORMAT} version {VERSION}",
                    meta.format, meta.version
                ),
            ));
        }
        if meta.observation_dim == 0 || meta.action_dim == 0 {
            return Err(dataset_error(dir, "zero observation or action width"));
        }
        for k in 0..meta.chunks.len() {
            let (po, pa) = chunk_paths(dir, k);
            if !po.exists() || !pa.exists() {
                return Err(dataset_error(dir, format!("chunk {k} is missing")));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    /// The description.
    pub fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    /// Rows in the dataset.
    pub fn len(&self) -> usize {
        self.meta.rows()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunk `k`: observations and actions.
    ///
    /// # Errors
    ///
    /// [`Error::Dataset`] for an unreadable chunk or one whose shape disagrees with the
    /// description; [`Error::InvalidInput`] for `k` out of range.
    pub fn chunk(&self, k: usize) -> Result<(Array2<f32>, Array2<f32>)> {
        let rows = *self.meta.chunks.get(k).ok_or_else(|| {
            invalid(format!(
                "chunk {k} of a dataset with {} chunks",
                self.meta.chunks.len()
            ))
        })?;
        let (po, pa) = chunk_paths(&self.dir, k);
        let obs: Array2<f32> = read_npy(&po).map_err(|e| dataset_error(&po, e.to_string()))?;
        let act: Array2<f32> = read_npy(&pa).map_err(|e| dataset_error(&pa, e.to_string()))?;
        if obs.dim() != (rows, self.meta.observation_dim)
            || act.dim() != (rows, self.meta.action_dim)
        {
            return Err(dataset_error(
                &self.dir,
                format!(
                    "chunk {k} holds {:?} observations and {:?} actions, the description \
                     says {rows} rows of {} and {}",
                    obs.dim(),
                    act.dim(),
                    self.meta.observation_dim,
                    self.meta.action_dim
                ),
            ));
        }
        Ok((obs, act))
    }

    /// Every row, chunks concatenated in order.
    ///
    /// # Errors
    ///
    /// As [`Dataset::chunk`].
    pub fn load_all(&self) -> Result<(Array2<f32>, Array2<f32>)> {
        let mut obs = Vec::with_capacity(self.meta.chunks.len());
        let mut act = Vec::with_capacity(self.meta.chunks.len());
        for k in 0..self.meta.chunks.len() {
            let (o, a) = self.chunk(k)?;
            obs.push(o);
            act.push(a);
        }
        if obs.is_empty() {
            return Ok((
                Array2::zeros((0, self.meta.observation_dim)),
                Array2::zeros((0, self.meta.action_dim)),
            ));
        }
        let obs_views: Vec<ArrayView2<'_, f32>> = obs.iter().map(|a| a.view()).collect();
        let act_views: Vec<ArrayView2<'_, f32>> = act.iter().map(|a| a.view()).collect();
        let shape = Error::Shape;
        Ok((
            concatenate(Axis(0), &obs_views).map_err(shape)?,
            concatenate(Axis(0), &act_views).map_err(shape)?,
        ))
    }
}

#[cfg(feature = "candle")]
/// Rows `idx` of `a` (gathered into a new array).
pub(crate) fn gather_rows(a: &Array2<f32>, idx: &[usize]) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((idx.len(), a.ncols()));
    for (k, &i) in idx.iter().enumerate() {
        out.row_mut(k).assign(&a.row(i));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ndarray::Array2;

    use super::*;

    fn rows(start: usize, n: usize, w: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, w), |(i, j)| ((start + i) * 10 + j) as f32)
    }

    #[test]
    fn rows_come_back_in_order_across_chunks_and_appends() {
        let dir = std::env::temp_dir().join(format!("dex-dataset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = DatasetWriter::create(&dir, 3, 2, 4, toml::Table::new()).unwrap();
        w.push(rows(0, 3, 3).view(), rows(0, 3, 2).view()).unwrap();
        w.push(rows(3, 3, 3).view(), rows(3, 3, 2).view()).unwrap();
        assert_eq!(w.meta().chunks, vec![4]);
        let meta = w.finish().unwrap();
        assert_eq!(meta.chunks, vec![4, 2]);
        // A second writer appends after the existing chunks.
        let mut w = DatasetWriter::append(&dir, 4).unwrap();
        w.push(rows(6, 5, 3).view(), rows(6, 5, 2).view()).unwrap();
        w.finish().unwrap();
        let d = Dataset::open(&dir).unwrap();
        assert_eq!(d.meta().chunks, vec![4, 2, 4, 1]);
        let (o, a) = d.load_all().unwrap();
        assert_eq!(o, rows(0, 11, 3));
        assert_eq!(a, rows(0, 11, 2));
        // The chunk files are plain .npy arrays.
        let c: Array2<f32> = read_npy(dir.join("actions-000001.npy")).unwrap();
        assert_eq!(c, rows(4, 2, 2));
        // Creating over an existing dataset is refused; bad rows are refused whole.
        assert!(DatasetWriter::create(&dir, 3, 2, 4, toml::Table::new()).is_err());
        let mut w = DatasetWriter::append(&dir, 4).unwrap();
        assert!(w.push(rows(0, 2, 4).view(), rows(0, 2, 2).view()).is_err());
        let mut bad = rows(0, 2, 3);
        bad[(1, 1)] = f32::NAN;
        assert!(w.push(bad.view(), rows(0, 2, 2).view()).is_err());
        assert_eq!(w.rows(), 11);
        // A corrupt chunk is an error naming the file.
        std::fs::write(dir.join("observations-000002.npy"), b"not npy").unwrap();
        let err = Dataset::open(&dir).unwrap().load_all().unwrap_err();
        assert!(err.to_string().contains("observations-000002"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_foreign_description_is_an_error() {
        let dir = std::env::temp_dir().join(format!("dex-dataset-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(Dataset::open(&dir), Err(Error::Dataset { .. })));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(META_FILE),
            "format = \"other\"\nversion = 1\nobservation_dim = 1\naction_dim = 1\nchunks = []\n",
        )
        .unwrap();
        let err = Dataset::open(&dir).unwrap_err();
        assert!(err.to_string().contains("format other"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
