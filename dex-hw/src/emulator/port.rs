//! The emulator as an in-process transport, on emulated time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::ServoBus;
use crate::error::Result;
use crate::transport::{Transport, wire_time};

/// An in-process [`Transport`] to a [`ServoBus`].
///
/// Time is emulated, not wall clock: every byte advances the bus by its wire
/// time at the port's baud rate, a reply arrives after its servo's Return Delay
/// Time, and a read that times out advances the bus by the timeout. Runs are
/// therefore deterministic. The bus is shared so tests can inspect the servos
/// while a driver owns the port.
#[derive(Debug, Clone)]
pub struct EmulatedPort {
    bus: Arc<Mutex<ServoBus>>,
    baud: u32,
    /// (time at which the bytes are fully received, bytes)
    pending: VecDeque<(f64, Vec<u8>)>,
}

impl EmulatedPort {
    /// A port to `bus` at `baud` bit/s.
    pub fn new(bus: ServoBus, baud: u32) -> Self {
        Self::shared(Arc::new(Mutex::new(bus)), baud)
    }

    /// A port to a bus shared with the caller.
    pub fn shared(bus: Arc<Mutex<ServoBus>>, baud: u32) -> Self {
        Self {
            bus,
            baud,
            pending: VecDeque::new(),
        }
    }

    /// The bus behind the port.
    pub fn bus(&self) -> Arc<Mutex<ServoBus>> {
        Arc::clone(&self.bus)
    }

    fn lock(&self) -> MutexGuard<'_, ServoBus> {
        // A panic while holding the lock leaves a usable bus: take it anyway.
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Transport for EmulatedPort {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let baud = self.baud;
        let mut bus = self.lock();
        bus.advance(wire_time(bytes.len(), baud).as_secs_f64());
        let now = bus.time();
        let replies = bus.receive(bytes);
        drop(bus);
        let mut t = now;
        for r in replies {
            t = t.max(now + r.delay_us as f64 * 1e-6)
                + wire_time(r.bytes.len(), baud).as_secs_f64();
            self.pending.push_back((t, r.bytes));
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        let shared = Arc::clone(&self.bus);
        let mut bus = shared.lock().unwrap_or_else(|e| e.into_inner());
        let now = bus.time();
        match self.pending.front_mut() {
            Some((ready, bytes)) if *ready <= now + timeout.as_secs_f64() => {
                bus.advance(*ready - now);
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    self.pending.pop_front();
                }
                Ok(n)
            }
            _ => {
                bus.advance(timeout.as_secs_f64());
                Ok(0)
            }
        }
    }

    fn clear_input(&mut self) -> Result<()> {
        let now = self.lock().time();
        self.pending.retain(|(ready, _)| *ready > now);
        Ok(())
    }

    fn baud_rate(&self) -> u32 {
        self.baud
    }

    fn emulated_time(&self) -> Option<f64> {
        Some(self.lock().time())
    }
}
