// The static Huffman code of HPACK (RFC 7541 Section 5.2 and Appendix B): encoding, length
// calculation and a table-driven decoder.
//
// The code of Appendix B is canonical: within one code length, codes are consecutive in
// symbol order, and each length starts where the previous one ended (shifted left). So the
// table is fully described by the code length of each of the 257 symbols (the bytes 0-255 and
// EOS = 256); the codes themselves are rebuilt below and checked against Appendix B in the
// tests.

/** Code lengths in bits of symbols 0..256 (RFC 7541 Appendix B). */
// prettier-ignore
const CODE_LENGTHS: readonly number[] = [
  // 0-31 (control characters)
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // 32-63: ' ' ! " # $ % & ' ( ) * + , - . / 0-9 : ; < = > ?
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6,
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10,
  // 64-95: @ A-Z [ \ ] ^ _
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6,
  // 96-127: ` a-z { | } ~ DEL
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28,
  // 128-255
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // 256: EOS
  30,
];

const EOS = 256;

/** Code length in bits per symbol. */
export const HUFFMAN_LENGTHS = Uint8Array.from(CODE_LENGTHS);

/** Code per symbol, right-aligned (the last bit of the code is bit 0). */
export const HUFFMAN_CODES = buildCanonicalCodes(HUFFMAN_LENGTHS);

function buildCanonicalCodes(lengths: Uint8Array): Uint32Array {
  if (lengths.length !== 257) throw new Error('HPACK Huffman table: expected 257 code lengths');
  const symbols = Array.from(lengths.keys()).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const codes = new Uint32Array(257);
  let code = 0;
  let prevLen = lengths[symbols[0]];
  for (const sym of symbols) {
    const len = lengths[sym];
    code *= 2 ** (len - prevLen); // multiplication: codes reach 30 bits, shifts are 32-bit signed
    prevLen = len;
    codes[sym] = code;
    code++;
  }
  // A complete prefix code ends exactly at 2^maxLen (Kraft equality); anything else is a typo.
  if (code !== 2 ** prevLen) throw new Error('HPACK Huffman table: code lengths are not a complete code');
  return codes;
}

/**
 * Number of bytes `s` takes Huffman-coded (padding included). `s` holds one byte per char
 * (latin1); returns -1 if a char is above 0xff.
 */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return -1;
    bits += HUFFMAN_LENGTHS[c];
  }
  return (bits + 7) >>> 3;
}

/**
 * Huffman-codes `s` (one byte per char, all <= 0xff: check with huffmanEncodedLength first)
 * into `out` at `offset`, padding the last byte with the high bits of EOS (all ones).
 * Returns the offset after the last byte written. `out` must have room for
 * huffmanEncodedLength(s) bytes.
 */
export function huffmanEncode(s: string, out: Uint8Array, offset: number): number {
  let o = offset;
  let acc = 0; // pending bits, right-aligned; fewer than 8 between symbols
  let nbits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i);
    const code = HUFFMAN_CODES[sym];
    let len = HUFFMAN_LENGTHS[sym];
    // Feed the code in chunks of at most 24 bits so that acc stays below 2^31.
    while (len > 0) {
      const take = len > 24 ? 24 : len;
      len -= take;
      acc = (acc << take) | ((code >>> len) & ((1 << take) - 1));
      nbits += take;
      while (nbits >= 8) {
        nbits -= 8;
        out[o++] = acc >>> nbits;
      }
      acc &= (1 << nbits) - 1;
    }
  }
  if (nbits > 0) out[o++] = (acc << (8 - nbits)) | (0xff >>> nbits);
  return o;
}

// ---- Decoding ----
//
// The code is a binary tree with 257 leaves and so 256 internal nodes. The decoder is a state
// machine over the internal nodes consuming 4 bits at a time: for each (node, nibble) a
// precomputed transition gives the next node and the symbol completed on the way, if any (at
// most one: the shortest code has 5 bits). Reaching EOS is a decoding error (Section 5.2).
//
// Transition layout (Int32Array, index node * 16 + nibble):
//   bits 0-8   next node
//   bits 9-17  emitted symbol
//   bit 18     a symbol was emitted
//   bit 19     EOS was reached (error)
// Per node, ACCEPT[node] says whether the string may end there: the node is reached from
// the root by at most 7 one-bits (the padding rule), which includes the root itself.

const T_EMIT = 1 << 18;
const T_FAIL = 1 << 19;

const { transitions: TRANSITIONS, accept: ACCEPT } = buildDecoder();

function buildDecoder(): { transitions: Int32Array; accept: Uint8Array } {
  // Tree as arrays; internal nodes get ids 0..255 (0 = root), leaves are stored as
  // -(symbol + 1) in the child arrays.
  const child0 = new Int32Array(256);
  const child1 = new Int32Array(256);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      const children = bit ? child1 : child0;
      if (b === 0) {
        children[node] = -(sym + 1);
      } else {
        if (children[node] === 0) {
          const n = nodes++;
          children[node] = n;
          depth[n] = depth[node] + 1;
          allOnes[n] = allOnes[node] & bit;
        }
        node = children[node];
      }
    }
  }
  if (nodes !== 256) throw new Error('HPACK Huffman table: unexpected tree shape');

  const transitions = new Int32Array(256 * 16);
  const accept = new Uint8Array(256);
  for (let n = 0; n < 256; n++) {
    accept[n] = allOnes[n] && depth[n] <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = n;
      let t = 0;
      for (let b = 3; b >= 0; b--) {
        const next = (nibble >>> b) & 1 ? child1[node] : child0[node];
        if (next < 0) {
          const sym = -next - 1;
          if (sym === EOS) {
            t |= T_FAIL;
            break;
          }
          t |= T_EMIT | (sym << 9);
          node = 0;
        } else {
          node = next;
        }
      }
      transitions[n * 16 + nibble] = t | node;
    }
  }
  return { transitions, accept };
}

/** Upper bound on the decoded length of `n` Huffman-coded bytes (shortest code: 5 bits). */
export function huffmanMaxDecodedLength(n: number): number {
  return Math.floor((n * 8) / 5);
}

/**
 * Decodes the Huffman-coded bytes src[start, end) into `out` at 0 (`out` must hold
 * huffmanMaxDecodedLength(end - start) bytes). Returns the decoded length, or -1 if the input
 * contains EOS or its padding is longer than 7 bits or not all ones.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let o = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    let t = TRANSITIONS[(state << 4) | (byte >>> 4)];
    if (t & T_FAIL) return -1;
    if (t & T_EMIT) out[o++] = (t >>> 9) & 0x1ff;
    state = t & 0x1ff;
    t = TRANSITIONS[(state << 4) | (byte & 0x0f)];
    if (t & T_FAIL) return -1;
    if (t & T_EMIT) out[o++] = (t >>> 9) & 0x1ff;
    state = t & 0x1ff;
  }
  return ACCEPT[state] ? o : -1;
}
