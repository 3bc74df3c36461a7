//! The streaming decoder on arbitrary bytes: never a panic, never a packet
//! accepted with a bad CRC, and valid packets buried in garbage all come out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_hw::protocol::{
    self, Instruction, PacketDecoder, crc::crc16, encode_instruction, encode_status,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_packets_check_out(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        let mut dec = PacketDecoder::new();
        for part in bytes.chunks(chunk) {
            dec.push(part);
            while let Some(p) = dec.next_packet() {
                if let Ok(p) = p {
                    let n = p.raw.len();
                    let crc = u16::from_le_bytes([p.raw[n - 2], p.raw[n - 1]]);
                    prop_assert_eq!(crc, crc16(&p.raw[..n - 2]));
                    // Parsing whatever came must not panic either.
                    let _ = Instruction::parse(p.instruction, &p.params);
                    let _ = protocol::split_fast_read_reply(&p, &[4, 4]);
                }
            }
        }
    }

    #[test]
    fn packets_in_garbage_are_all_recovered(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 1..8),
    ) {
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        for (k, (g, params)) in garbage.iter().zip(&payloads).enumerate() {
            // Garbage must not contain a header, or it could frame a real packet.
            let g: Vec<u8> = g.iter().map(|b| if *b == 0xFF { 0x00 } else { *b }).collect();
            stream.extend(&g);
            encode_status(&mut stream, k as u8, 0, params).unwrap();
            sent.push((k as u8, params.clone()));
        }
        let mut dec = PacketDecoder::new();
        dec.push(&stream);
        let mut got = Vec::new();
        while let Some(p) = dec.next_packet() {
            let p = p.unwrap();
            got.push((p.id, p.status_params().to_vec()));
        }
        prop_assert_eq!(got, sent);
    }

    #[test]
    fn a_flipped_bit_is_never_accepted_as_the_original(
        params in prop::collection::vec(any::<u8>(), 1..20),
        bit in 0usize..8,
        at in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        encode_instruction(&mut bytes, 3, &Instruction::Write { address: 116, data: params.clone() }).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let mut dec = PacketDecoder::new();
        dec.push(&bytes);
        while let Some(p) = dec.next_packet() {
            if let Ok(p) = p {
                let same = p.id == 3 && Instruction::parse(p.instruction, &p.params).ok()
                    == Some(Instruction::Write { address: 116, data: params.clone() });
                prop_assert!(!same, "a corrupted packet decoded as the original");
            }
        }
    }
}

#[test]
fn resynchronises_after_a_corrupted_packet() {
    let mut stream = Vec::new();
    encode_status(&mut stream, 1, 0, &[1, 2, 3]).unwrap();
    let bad_end = stream.len();
    stream[bad_end - 3] ^= 0xFF; // corrupt a parameter of the first packet
    stream.extend([0x12, 0x34, 0xFF]);
    encode_status(&mut stream, 2, 0, &[4, 5]).unwrap();
    let mut dec = PacketDecoder::new();
    // Byte by byte, as a slow port delivers them.
    let mut results = Vec::new();
    for b in stream {
        dec.push(&[b]);
        while let Some(p) = dec.next_packet() {
            results.push(p.map(|p| p.id));
        }
    }
    assert!(matches!(results[0], Err(dex_hw::Error::Crc { .. })));
    assert_eq!(results.last().unwrap().as_ref().ok(), Some(&2));
    assert!(dec.discarded() > 0);
}
