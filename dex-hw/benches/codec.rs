//! Criterion benches of dex-hw: the protocol codec of one LEAP control cycle
//! (encode a Sync Write of 16 goals, decode a Fast Sync Read reply of 16 × 10
//! bytes), and whole cycles against the in-process emulator.
//!
//! Run with `cargo bench -p dex-hw --bench codec`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dex_hw::control_table as ct;
use dex_hw::protocol::{
    PacketDecoder, encode_fast_read_reply, encode_sync_write, split_fast_read_reply,
};
use dex_hw::{
    DynamixelBus, EmulatedPort, HandDriver, JointTargets, LeapConfig, LeapHand, ServoBus,
};

fn leap_reply() -> Vec<u8> {
    let data: Vec<[u8; 10]> = (0..16u8)
        .map(|i| {
            let mut d = [0u8; 10];
            d[0..2].copy_from_slice(&(i16::from(i) * 7 - 40).to_le_bytes());
            d[2..6].copy_from_slice(&(i32::from(i) * 3 - 20).to_le_bytes());
            d[6..10].copy_from_slice(&(2048 + i32::from(i) * 31).to_le_bytes());
            d
        })
        .collect();
    let entries: Vec<(u8, u8, &[u8])> = data
        .iter()
        .enumerate()
        .map(|(i, d)| (0, i as u8, &d[..]))
        .collect();
    let mut out = Vec::new();
    encode_fast_read_reply(&mut out, &entries).unwrap();
    out
}

fn codec(c: &mut Criterion) {
    let ids: Vec<u8> = (0..16).collect();
    let goals: Vec<u8> = (0..16i32)
        .flat_map(|i| (2048 + i * 13).to_le_bytes())
        .collect();
    let reply = leap_reply();
    let mut tx = Vec::with_capacity(128);
    let mut out = vec![0u8; 160];
    let mut decoder = PacketDecoder::new();
    let lengths = [10usize; 16];
    c.bench_function("leap_cycle_codec/encode_sync_write_16", |b| {
        b.iter(|| {
            tx.clear();
            encode_sync_write(
                &mut tx,
                ct::GOAL_POSITION.address,
                4,
                black_box(&ids),
                black_box(&goals),
            )
            .unwrap();
            black_box(&tx);
        })
    });
    c.bench_function("leap_cycle_codec/decode_fast_sync_read_16x10", |b| {
        b.iter(|| {
            decoder.push(black_box(&reply));
            let p = decoder.next_packet().unwrap().unwrap();
            let entries = split_fast_read_reply(&p, &lengths).unwrap();
            for (k, e) in entries.iter().enumerate() {
                out[k * 10..k * 10 + 10].copy_from_slice(&e.data);
            }
            black_box(&out);
        })
    });
    c.bench_function("leap_cycle_codec/encode_plus_decode", |b| {
        b.iter(|| {
            tx.clear();
            encode_sync_write(
                &mut tx,
                ct::GOAL_POSITION.address,
                4,
                black_box(&ids),
                black_box(&goals),
            )
            .unwrap();
            decoder.push(black_box(&reply));
            let p = decoder.next_packet().unwrap().unwrap();
            let entries = split_fast_read_reply(&p, &lengths).unwrap();
            black_box((&tx, entries));
        })
    });
}

fn emulated_cycle(c: &mut Criterion) {
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let mut hand = LeapHand::open(
        port,
        LeapConfig {
            bus_watchdog: None,
            ..LeapConfig::default()
        },
    )
    .unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    let targets = JointTargets::new(vec![0.1; 16]);
    c.bench_function("leap_driver/emulated_cycle_write_read", |b| {
        b.iter(|| {
            hand.write_targets(black_box(&targets)).unwrap();
            black_box(hand.read_state().unwrap());
        })
    });
    let mut bus = DynamixelBus::new(EmulatedPort::new(
        ServoBus::with_servos([1], &[]),
        4_000_000,
    ));
    c.bench_function("bus/emulated_ping", |b| {
        b.iter(|| black_box(bus.ping(1).unwrap()))
    });
}

criterion_group!(benches, codec, emulated_cycle);
criterion_main!(benches);
