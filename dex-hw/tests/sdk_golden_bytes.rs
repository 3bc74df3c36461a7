//! Our encoder sends the same instruction packets as the official ROBOTIS
//! DynamixelSDK (Python, dynamixel-sdk 4.1.0), byte for byte, and our decoder
//! reads every packet the SDK sends as the instruction we meant.
//!
//! The golden bytes in `data/sdk_golden.txt` were captured from the SDK itself by
//! `python3 benches/peers/sdk_golden_bytes.py`; regenerate them with that script,
//! never by hand. Every line of the file must be known to this test: an unknown
//! operation name fails, so no capture is skipped silently.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::collections::BTreeSet;

use dex_hw::protocol::{
    self, BROADCAST_ID, BulkReadItem, BulkWriteItem, Instruction, PacketDecoder,
    encode_instruction, encode_sync_write,
};

const GOLDEN: &str = include_str!("data/sdk_golden.txt");

/// Operations where SDK 4.1.0 knowingly sends something else than we do.
///
/// `write_id5_112_00FDFFFF`: the data bytes are `FF FF FD 00`, the header
/// pattern. The protocol requires byte stuffing (`FF FF FD` → `FF FF FD FD`,
/// LEN and CRC over the stuffed packet), and we stuff. The SDK's
/// `Protocol2PacketHandler.txPacket` calls `addStuffing(txpacket)` but ignores
/// its return value, and `addStuffing` builds a *new* list whenever the length
/// changes, so the SDK transmits the packet unstuffed (LEN 9 instead of 10).
/// Receivers that frame by LEN (servos, our decoder) accept both forms; the
/// test pins down that the SDK's bytes are exactly our packet minus stuffing.
const SDK_SENDS_UNSTUFFED: &[&str] = &["write_id5_112_00FDFFFF"];

/// One captured operation: its 1-based line in the golden file, name and bytes.
struct Capture {
    line: usize,
    name: &'static str,
    bytes: Vec<u8>,
}

fn captures() -> Vec<Capture> {
    let mut out = Vec::new();
    for (i, text) in GOLDEN.lines().enumerate() {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (name, hex) = text
            .split_once(':')
            .unwrap_or_else(|| panic!("line {}: no `name:` in {text:?}", i + 1));
        let bytes = hex
            .split_whitespace()
            .map(|b| {
                assert_eq!(b.len(), 2, "line {}: {b:?} is not one hex byte", i + 1);
                u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("line {}: {b:?}: {e}", i + 1))
            })
            .collect::<Vec<u8>>();
        assert!(!bytes.is_empty(), "line {}: no bytes", i + 1);
        out.push(Capture {
            line: i + 1,
            name: name.trim(),
            bytes,
        });
    }
    out
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The servo ID and instruction of the operation the golden file calls `name`;
/// `None` for a name this test does not know.
fn operation(name: &str) -> Option<(u8, Instruction)> {
    let op = match name {
        "ping_id1" => (1, Instruction::Ping),
        "read_id1_132_4" => (
            1,
            Instruction::Read {
                address: 132,
                length: 4,
            },
        ),
        "write_id1_116_512" => (
            1,
            Instruction::Write {
                address: 116,
                data: le32(512).to_vec(),
            },
        ),
        "write_id5_112_00FDFFFF" => (
            5,
            Instruction::Write {
                address: 112,
                data: le32(0x00FD_FFFF).to_vec(),
            },
        ),
        "reg_write_id2_65_1" => (
            2,
            Instruction::RegWrite {
                address: 65,
                data: vec![1],
            },
        ),
        "action_id2" => (2, Instruction::Action),
        "reboot_id3" => (3, Instruction::Reboot),
        "sync_write_116_4_id1_150_id2_170" => (
            BROADCAST_ID,
            Instruction::SyncWrite {
                address: 116,
                length: 4,
                ids: vec![1, 2],
                data: [le32(150), le32(170)].concat(),
            },
        ),
        "sync_read_132_4_id1_2_3" => (
            BROADCAST_ID,
            Instruction::SyncRead {
                address: 132,
                length: 4,
                ids: vec![1, 2, 3],
            },
        ),
        "fast_sync_read_126_10_id0_15" => (
            BROADCAST_ID,
            Instruction::FastSyncRead {
                address: 126,
                length: 10,
                ids: (0..16).collect(),
            },
        ),
        "bulk_read_id1_132_4_id2_0_2" | "fast_bulk_read_id1_132_4_id2_0_2" => {
            let items = vec![
                BulkReadItem {
                    id: 1,
                    address: 132,
                    length: 4,
                },
                BulkReadItem {
                    id: 2,
                    address: 0,
                    length: 2,
                },
            ];
            let inst = if name.starts_with("fast_") {
                Instruction::FastBulkRead(items)
            } else {
                Instruction::BulkRead(items)
            };
            (BROADCAST_ID, inst)
        }
        "bulk_write_id1_116_2048_id2_64_1" => (
            BROADCAST_ID,
            Instruction::BulkWrite(vec![
                BulkWriteItem {
                    id: 1,
                    address: 116,
                    data: le32(2048).to_vec(),
                },
                BulkWriteItem {
                    id: 2,
                    address: 64,
                    data: vec![1],
                },
            ]),
        ),
        "factory_reset_id4_02" => (4, Instruction::FactoryReset { mode: 0x02 }),
        "clear_multi_turn_id1" => (1, Instruction::Clear { option: 0x01 }),
        _ => return None,
    };
    Some(op)
}

fn encode(id: u8, inst: &Instruction) -> Vec<u8> {
    let mut out = Vec::new();
    encode_instruction(&mut out, id, inst).unwrap();
    out
}

/// `packet` rebuilt without byte stuffing: LEN and CRC recomputed.
fn without_stuffing(packet: &[u8]) -> Vec<u8> {
    let body = protocol::unstuff(&packet[7..packet.len() - 2]);
    let len = u16::try_from(body.len() + 2).unwrap();
    let mut out = packet[..5].to_vec();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    let crc = protocol::crc::crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes one whole instruction packet with our decoder.
fn decode(bytes: &[u8]) -> (u8, Instruction) {
    let mut decoder = PacketDecoder::new();
    decoder.push(bytes);
    let packet = decoder
        .next_packet()
        .expect("a whole packet")
        .expect("a valid packet");
    assert_eq!(decoder.buffered(), 0, "bytes left after the packet");
    assert_eq!(decoder.discarded(), 0, "bytes discarded before the packet");
    let inst = Instruction::parse(packet.instruction, &packet.params).unwrap();
    (packet.id, inst)
}

#[test]
fn golden_file_is_not_empty_and_names_are_unique() {
    let caps = captures();
    assert!(caps.len() >= 15, "only {} captures", caps.len());
    let mut seen = BTreeSet::new();
    for c in &caps {
        assert!(
            seen.insert(c.name),
            "line {}: {} appears twice",
            c.line,
            c.name
        );
    }
    assert!(
        GOLDEN
            .lines()
            .any(|l| l.starts_with('#') && l.contains("4.1.0")),
        "the header should name the SDK version"
    );
}

#[test]
fn our_encoder_sends_the_sdks_bytes() {
    let mut mismatches = Vec::new();
    for c in captures() {
        let (id, inst) = operation(c.name).unwrap_or_else(|| {
            panic!(
                "line {}: unknown operation {:?}; add it to this test",
                c.line, c.name
            )
        });
        let ours = encode(id, &inst);
        if SDK_SENDS_UNSTUFFED.contains(&c.name) {
            assert_ne!(
                ours, c.bytes,
                "{}: the SDK now sends our bytes; drop it from SDK_SENDS_UNSTUFFED",
                c.name
            );
            assert!(
                ours.windows(4).any(|w| w == [0xFF, 0xFF, 0xFD, 0xFD]),
                "{}: we should stuff: {}",
                c.name,
                hex(&ours)
            );
            assert_eq!(
                without_stuffing(&ours),
                c.bytes,
                "{}: the SDK's bytes should be ours without stuffing",
                c.name
            );
            continue;
        }
        if ours != c.bytes {
            mismatches.push(format!(
                "{} (line {}):\n  sdk  {}\n  ours {}",
                c.name,
                c.line,
                hex(&c.bytes),
                hex(&ours)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "our bytes differ from the SDK's:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn hot_path_sync_write_matches_the_sdk() {
    let cap = captures()
        .into_iter()
        .find(|c| c.name == "sync_write_116_4_id1_150_id2_170")
        .expect("the sync write capture");
    let mut out = Vec::new();
    encode_sync_write(&mut out, 116, 4, &[1, 2], &[le32(150), le32(170)].concat()).unwrap();
    assert_eq!(hex(&out), hex(&cap.bytes));
}

#[test]
fn our_decoder_reads_every_sdk_packet_as_meant() {
    for c in captures() {
        let (id, inst) = operation(c.name).unwrap_or_else(|| {
            panic!(
                "line {}: unknown operation {:?}; add it to this test",
                c.line, c.name
            )
        });
        let (got_id, got_inst) = decode(&c.bytes);
        assert_eq!(got_id, id, "{}: ID", c.name);
        assert_eq!(got_inst, inst, "{}: instruction", c.name);
    }
}
