//! Our encoder's bytes equal the official examples of the Protocol 2.0 manual,
//! and the decoder reads them back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_hw::protocol::{
    self, BulkReadItem, Instruction, PacketDecoder, encode_fast_read_reply, encode_instruction,
    encode_status, encode_sync_write, split_fast_read_reply,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn encoded(id: u8, i: &Instruction) -> Vec<u8> {
    let mut out = Vec::new();
    encode_instruction(&mut out, id, i).unwrap();
    out
}

#[test]
fn ping_and_its_reply() {
    assert_eq!(
        encoded(1, &Instruction::Ping),
        hex("FF FF FD 00 01 03 00 01 19 4E")
    );
    let mut reply = Vec::new();
    encode_status(&mut reply, 1, 0, &[0x06, 0x04, 0x26]).unwrap();
    assert_eq!(reply, hex("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D"));
}

#[test]
fn read_write_and_crc_page_examples() {
    // Read Present Position (132, 4 bytes) of ID 1.
    assert_eq!(
        encoded(
            1,
            &Instruction::Read {
                address: 132,
                length: 4
            }
        ),
        hex("FF FF FD 00 01 07 00 02 84 00 04 00 1D 15")
    );
    // Write 512 to Goal Position (116) of ID 1.
    assert_eq!(
        encoded(
            1,
            &Instruction::Write {
                address: 116,
                data: vec![0x00, 0x02, 0x00, 0x00]
            }
        ),
        hex("FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89")
    );
    // The CRC page's example: read 2 bytes at address 0.
    assert_eq!(
        encoded(
            1,
            &Instruction::Read {
                address: 0,
                length: 2
            }
        ),
        hex("FF FF FD 00 01 07 00 02 00 00 02 00 21 51")
    );
}

#[test]
fn sync_write_example() {
    // Goal Position 150 to ID 1 and 170 to ID 2.
    let expected = hex("FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87");
    let data = [0x96, 0, 0, 0, 0xAA, 0, 0, 0];
    let mut fast = Vec::new();
    encode_sync_write(&mut fast, 116, 4, &[1, 2], &data).unwrap();
    assert_eq!(fast, expected);
    let general = encoded(
        0xFE,
        &Instruction::SyncWrite {
            address: 116,
            length: 4,
            ids: vec![1, 2],
            data: data.to_vec(),
        },
    );
    assert_eq!(general, expected);
}

#[test]
fn fast_sync_read_instruction_and_reply() {
    assert_eq!(
        encoded(
            0xFE,
            &Instruction::FastSyncRead {
                address: 132,
                length: 4,
                ids: vec![3, 7, 4]
            }
        ),
        hex("FF FF FD 00 FE 0A 00 8A 84 00 04 00 03 07 04 20 F2")
    );
    // The manual's reply: Present Position 166, 2079, 1023 of IDs 3, 7, 4.
    let official = hex(
        "FF FF FD 00 FE 19 00 55 00 03 A6 00 00 00 84 08 00 07 1F 08 00 00 16 CA 00 04 FF 03 00 00 D1 9E",
    );
    let mut ours = Vec::new();
    let (a, b, c) = (
        166u32.to_le_bytes(),
        2079u32.to_le_bytes(),
        1023u32.to_le_bytes(),
    );
    encode_fast_read_reply(&mut ours, &[(0, 3, &a), (0, 7, &b), (0, 4, &c)]).unwrap();
    assert_eq!(ours, official);

    let mut dec = PacketDecoder::new();
    dec.push(&official);
    let packet = dec.next_packet().unwrap().unwrap();
    let entries = split_fast_read_reply(&packet, &[4, 4, 4]).unwrap();
    let ids: Vec<u8> = entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, [3, 7, 4]);
    assert_eq!(entries[1].data, 2079u32.to_le_bytes());

    // A wrong running CRC in the middle is caught even though the final CRC is right.
    let mut tampered = official.clone();
    tampered[14] ^= 0x01; // first servo's running CRC
    let crc = protocol::crc::crc16(&tampered[..tampered.len() - 2]);
    let n = tampered.len();
    tampered[n - 2..].copy_from_slice(&crc.to_le_bytes());
    let mut dec = PacketDecoder::new();
    dec.push(&tampered);
    let packet = dec.next_packet().unwrap().unwrap();
    assert!(matches!(
        split_fast_read_reply(&packet, &[4, 4, 4]),
        Err(dex_hw::Error::Crc { .. })
    ));
}

#[test]
fn byte_stuffing_round_trips() {
    // Writing 0x00FDFFFF puts FF FF FD 00 in the parameters: one FD is stuffed.
    let write = Instruction::Write {
        address: 116,
        data: vec![0xFF, 0xFF, 0xFD, 0x00],
    };
    let bytes = encoded(1, &write);
    assert_eq!(bytes, {
        let mut v = hex("FF FF FD 00 01 0A 00 03 74 00 FF FF FD FD 00");
        let crc = protocol::crc::crc16(&v);
        v.extend(crc.to_le_bytes());
        v
    });
    let mut dec = PacketDecoder::new();
    dec.push(&bytes);
    let p = dec.next_packet().unwrap().unwrap();
    assert_eq!(Instruction::parse(p.instruction, &p.params).unwrap(), write);
}

#[test]
fn every_instruction_round_trips() {
    let all = vec![
        Instruction::Ping,
        Instruction::Read {
            address: 126,
            length: 10,
        },
        Instruction::Write {
            address: 64,
            data: vec![1],
        },
        Instruction::RegWrite {
            address: 116,
            data: vec![1, 2, 3, 4],
        },
        Instruction::Action,
        Instruction::FactoryReset { mode: 0x02 },
        Instruction::Reboot,
        Instruction::Clear { option: 1 },
        Instruction::ControlTableBackup { restore: true },
        Instruction::SyncRead {
            address: 132,
            length: 4,
            ids: vec![0, 1, 2],
        },
        Instruction::FastSyncRead {
            address: 126,
            length: 10,
            ids: (0..16).collect(),
        },
        Instruction::SyncWrite {
            address: 116,
            length: 4,
            ids: vec![0, 5],
            data: vec![0xFF, 0xFF, 0xFD, 0, 1, 2, 3, 4],
        },
        Instruction::BulkRead(vec![
            BulkReadItem {
                id: 1,
                address: 132,
                length: 4,
            },
            BulkReadItem {
                id: 2,
                address: 126,
                length: 2,
            },
        ]),
        Instruction::FastBulkRead(vec![BulkReadItem {
            id: 3,
            address: 0,
            length: 2,
        }]),
        Instruction::BulkWrite(vec![
            protocol::BulkWriteItem {
                id: 1,
                address: 64,
                data: vec![1],
            },
            protocol::BulkWriteItem {
                id: 2,
                address: 116,
                data: vec![0, 8, 0, 0],
            },
        ]),
    ];
    let mut stream = Vec::new();
    for (k, i) in all.iter().enumerate() {
        encode_instruction(&mut stream, k as u8, i).unwrap();
    }
    let mut dec = PacketDecoder::new();
    dec.push(&stream);
    for (k, i) in all.iter().enumerate() {
        let p = dec.next_packet().unwrap().unwrap();
        assert_eq!(p.id, k as u8);
        assert_eq!(&Instruction::parse(p.instruction, &p.params).unwrap(), i);
    }
    assert!(dec.next_packet().is_none());
}

#[test]
fn bad_arguments_are_errors() {
    let mut out = Vec::new();
    assert!(encode_instruction(&mut out, 253, &Instruction::Ping).is_err());
    assert!(encode_sync_write(&mut out, 116, 4, &[1, 2], &[0; 7]).is_err());
    assert!(encode_sync_write(&mut out, 116, 4, &[254], &[0; 4]).is_err());
    assert!(encode_fast_read_reply(&mut out, &[]).is_err());
    assert!(Instruction::parse(0x02, &[1, 2, 3]).is_err());
    assert!(Instruction::parse(0x77, &[]).is_err());
}
