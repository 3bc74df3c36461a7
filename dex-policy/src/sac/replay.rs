//! The replay buffer: each observation stored once, images as `u8`.

use ndarray::{Array2, ArrayView2};
use rand::Rng;

use crate::error::{Error, Result, invalid};

/// A replay buffer laid out time-major per environment, storing every observation
/// once: the row written at step `t` holds the observation the action was taken from,
/// the action, reward and flags; the next observation is the next row of the same
/// environment. With dex-sim's next-step auto-reset the final observation of an
/// episode is the row after its last transition, and that row (the reset step) is
/// marked invalid, so no observation is stored twice.
///
/// Observations have a float part (`state_dim` values) and an optional byte part
/// (`image_len` values: depth images quantised to `u8`).
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    pub(super) num_envs: usize,
    pub(super) capacity: usize,
    pub(super) state_dim: usize,
    pub(super) image_len: usize,
    pub(super) action_dim: usize,
    pub(super) states: Vec<f32>,
    pub(super) images: Vec<u8>,
    pub(super) actions: Vec<f32>,
    pub(super) rewards: Vec<f32>,
    pub(super) terminated: Vec<bool>,
    pub(super) valid: Vec<bool>,
    pub(super) head: usize,
    pub(super) filled: usize,
}

/// A sampled minibatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Observation float parts, `B × state_dim`.
    pub states: Array2<f32>,
    /// Next observation float parts.
    pub next_states: Array2<f32>,
    /// Observation byte parts, `B × image_len` (empty when none).
    pub images: Array2<u8>,
    /// Next observation byte parts.
    pub next_images: Array2<u8>,
    /// Actions, `B × action_dim`.
    pub actions: Array2<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// 0 where the episode terminated (no bootstrap), 1 otherwise (truncations bootstrap).
    pub not_done: Vec<f32>,
}

impl ReplayBuffer {
    /// A buffer of `capacity` steps per environment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for zero sizes or a capacity below 2.
    pub fn new(
        num_envs: usize,
        capacity: usize,
        state_dim: usize,
        image_len: usize,
        action_dim: usize,
    ) -> Result<Self> {
        if num_envs == 0 || capacity < 2 || action_dim == 0 || state_dim + image_len == 0 {
            return Err(invalid(
                "a replay buffer needs environments, a capacity ≥ 2, actions and observations",
            ));
        }
        let rows = num_envs * capacity;
        Ok(Self {
            num_envs,
            capacity,
            state_dim,
            image_len,
            action_dim,
            states: vec![0.0; rows * state_dim],
            images: vec![0; rows * image_len],
            actions: vec![0.0; rows * action_dim],
            rewards: vec![0.0; rows],
            terminated: vec![false; rows],
            valid: vec![false; rows],
            head: 0,
            filled: 0,
        })
    }

    /// Steps stored per environment (at most the capacity).
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Nothing stored yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Bytes held by the stored data.
    pub fn memory_bytes(&self) -> usize {
        self.states.len() * 4
            + self.images.len()
            + self.actions.len() * 4
            + self.rewards.len() * 4
            + self.terminated.len()
            + self.valid.len()
    }

    /// Stores one step of every environment: the observations acted from (`states`
    /// `N × state_dim`, `images` `N × image_len`), the actions and their outcome. A row
    /// with `valid = false` (an auto-reset step) is stored for its observation only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for mismatched shapes.
    pub fn push(
        &mut self,
        states: ArrayView2<'_, f32>,
        images: ArrayView2<'_, u8>,
        actions: ArrayView2<'_, f32>,
        rewards: &[f32],
        terminated: &[bool],
        valid: &[bool],
    ) -> Result<()> {
        let n = self.num_envs;
        if states.dim() != (n, self.state_dim)
            || images.dim() != (n, self.image_len)
            || actions.dim() != (n, self.action_dim)
            || rewards.len() != n
            || terminated.len() != n
            || valid.len() != n
        {
            return Err(invalid(format!(
                "replay push: expected {n} rows of {} state, {} image and {} action values",
                self.state_dim, self.image_len, self.action_dim
            )));
        }
        for i in 0..n {
            let row = self.head * n + i;
            let copy_f32 = |dst: &mut [f32], src: ndarray::ArrayView1<'_, f32>, w: usize| {
                for (d, s) in dst[row * w..(row + 1) * w].iter_mut().zip(src) {
                    *d = *s;
                }
            };
            copy_f32(&mut self.states, states.row(i), self.state_dim);
            copy_f32(&mut self.actions, actions.row(i), self.action_dim);
            let w = self.image_len;
            for (d, s) in self.images[row * w..(row + 1) * w]
                .iter_mut()
                .zip(images.row(i))
            {
                *d = *s;
            }
            self.rewards[row] = rewards[i];
            self.terminated[row] = terminated[i];
            self.valid[row] = valid[i];
        }
        self.head = (self.head + 1) % self.capacity;
        self.filled = (self.filled + 1).min(self.capacity);
        Ok(())
    }

    /// How many transitions can be sampled: valid rows whose next row is stored.
    pub fn transitions(&self) -> usize {
        if self.filled < 2 {
            return 0;
        }
        let newest = (self.head + self.capacity - 1) % self.capacity;
        (0..self.capacity)
            .filter(|&s| s != newest && self.slot_filled(s))
            .map(|s| {
                (0..self.num_envs)
                    .filter(|&i| self.valid[s * self.num_envs + i])
                    .count()
            })
            .sum()
    }

    pub(super) fn slot_filled(&self, slot: usize) -> bool {
        self.filled == self.capacity || slot < self.head
    }

    /// Samples `batch` transitions uniformly (with replacement) among the stored ones.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when fewer than 2 steps are stored or no stored
    /// transition is valid.
    pub fn sample(&self, batch: usize, rng: &mut dyn rand::RngCore) -> Result<Batch> {
        if self.filled < 2 {
            return Err(invalid(
                "the replay buffer holds no complete transition yet",
            ));
        }
        let (n, cap) = (self.num_envs, self.capacity);
        let newest = (self.head + cap - 1) % cap;
        // Slots that have a successor: every filled one but the newest.
        let oldest = if self.filled == cap { self.head } else { 0 };
        let usable = self.filled - 1;
        let mut rows = Vec::with_capacity(batch);
        let mut tries = 0usize;
        while rows.len() < batch {
            tries += 1;
            if tries > 1000 * batch.max(1) {
                return Err(invalid("the replay buffer holds no valid transition"));
            }
            let slot = (oldest + rng.random_range(0..usable)) % cap;
            debug_assert_ne!(slot, newest);
            let i = rng.random_range(0..n);
            let row = slot * n + i;
            if self.valid[row] {
                rows.push((row, ((slot + 1) % cap) * n + i));
            }
        }
        let gather_f32 = |src: &[f32], w: usize, pick: &dyn Fn(&(usize, usize)) -> usize| {
            let mut v = Vec::with_capacity(rows.len() * w);
            for r in &rows {
                let k = pick(r);
                v.extend_from_slice(&src[k * w..(k + 1) * w]);
            }
            Array2::from_shape_vec((rows.len(), w), v)
        };
        let gather_u8 = |w: usize, pick: &dyn Fn(&(usize, usize)) -> usize| {
            let mut v = Vec::with_capacity(rows.len() * w);
            for r in &rows {
                let k = pick(r);
                v.extend_from_slice(&self.images[k * w..(k + 1) * w]);
            }
            Array2::from_shape_vec((rows.len(), w), v)
        };
        let shape = Error::Shape;
        Ok(Batch {
            states: gather_f32(&self.states, self.state_dim, &|r| r.0).map_err(shape)?,
            next_states: gather_f32(&self.states, self.state_dim, &|r| r.1).map_err(shape)?,
            images: gather_u8(self.image_len, &|r| r.0).map_err(shape)?,
            next_images: gather_u8(self.image_len, &|r| r.1).map_err(shape)?,
            actions: gather_f32(&self.actions, self.action_dim, &|r| r.0).map_err(shape)?,
            rewards: rows.iter().map(|r| self.rewards[r.0]).collect(),
            not_done: rows
                .iter()
                .map(|r| if self.terminated[r.0] { 0.0 } else { 1.0 })
                .collect(),
        })
    }
}
