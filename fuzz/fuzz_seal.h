/* The "database dump" that fuzz_seal reads and seal_corpus writes: what a
 * hostile (A1) or broken database hands the walk. Big-endian throughout.
 *   u8 flags: bit 0 store (0 offline, 1 archive); bit 1 walk with an
 *     in-memory anchor taken from the row; bit 2 walk with the anchor
 *     that follows in the input instead
 *   [bit 2: the anchor: u64 base_seq, base_chain[32], u64 head_seq,
 *     head_chain[32], u64 live, u64 live_bytes]
 *   u16 length, keyring row (seal_keyring_encode)
 *   records to the end, each: u64 seq, u64 stamp, u32 key_id, epk[32],
 *     nonce[12], u8 wiped, u32 ct_len, then (live) ct_len bytes of ct,
 *     chain[32], tomb[32]
 * The seal key is FUZZ_SEAL_KEY_BYTE x 32, the row's owner FUZZ_SEAL_JID,
 * the SHA-256 ClientKey FUZZ_SEAL_CK_BYTE x 32. */
#ifndef ROOST_FUZZ_SEAL_H
#define ROOST_FUZZ_SEAL_H

#define FUZZ_SEAL_KEY_BYTE 0x42
#define FUZZ_SEAL_CK_BYTE 0x11
#define FUZZ_SEAL_JID "juliet@example.org"

#define FUZZ_SEAL_F_ARCHIVE 0x01
#define FUZZ_SEAL_F_ROW_ANCHOR 0x02
#define FUZZ_SEAL_F_ANCHOR 0x04

#endif
