import fc from 'fast-check';
import http2 from 'node:http2';
import net from 'node:net';

import { HeaderList, HpackDecoder, HpackEncoder, HpackError } from '../../src/grpc/hpack';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../src/grpc/hpack-huffman';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Entries with their sizes (Section 4.1), newest first, as Appendix C lists them. */
function sized(entries: HeaderList): Array<[string, string, number]> {
  return entries.map(([n, v]) => [n, v, n.length + v.length + 32]);
}

const tableSize = (t: Array<[string, string, number]>): number => t.reduce((s, e) => s + e[2], 0);

interface Example {
  id: string;
  block: string;
  headers: HeaderList;
  table: Array<[string, string, number]>;
}

// RFC 7541 Appendix C.3 / C.4 (requests, the same three blocks without and with Huffman).
const REQUEST_HEADERS: HeaderList[] = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];
const REQUEST_TABLES: Array<Array<[string, string, number]>> = [
  [[':authority', 'www.example.com', 57]],
  [
    ['cache-control', 'no-cache', 53],
    [':authority', 'www.example.com', 57],
  ],
  [
    ['custom-key', 'custom-value', 54],
    ['cache-control', 'no-cache', 53],
    [':authority', 'www.example.com', 57],
  ],
];
const C3_BLOCKS = [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
];
const C4_BLOCKS = [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
];

// RFC 7541 Appendix C.5 / C.6 (responses, 256-byte table, evictions).
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSE_HEADERS: HeaderList[] = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOCATION],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOCATION],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE2],
    ['location', LOCATION],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];
const RESPONSE_TABLES: Array<Array<[string, string, number]>> = [
  [
    ['location', LOCATION, 63],
    ['date', DATE1, 65],
    ['cache-control', 'private', 52],
    [':status', '302', 42],
  ],
  [
    [':status', '307', 42],
    ['location', LOCATION, 63],
    ['date', DATE1, 65],
    ['cache-control', 'private', 52],
  ],
  [
    ['set-cookie', COOKIE, 98],
    ['content-encoding', 'gzip', 52],
    ['date', DATE2, 65],
  ],
];
const C5_BLOCKS = [
  '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133' +
    '2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '4803 3330 37c1 c0bf',
  '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d' +
    '54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049' +
    '5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
];
const C6_BLOCKS = [
  '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6' +
    '2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
  '4883 640e ffc1 c0bf',
  '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab' +
    '77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f' +
    '9587 3160 65c0 03ed 4ee5 b106 3d50 07',
];

const examples = (prefix: string, blocks: string[], headers: HeaderList[], tables: Example['table'][]): Example[] =>
  blocks.map((block, i) => ({ id: `${prefix}.${i + 1}`, block, headers: headers[i], table: tables[i] }));

const SEQUENCES: Array<{ name: string; tableSize: number; huffman: boolean; examples: Example[] }> = [
  { name: 'C.3', tableSize: 4096, huffman: false, examples: examples('C.3', C3_BLOCKS, REQUEST_HEADERS, REQUEST_TABLES) },
  { name: 'C.4', tableSize: 4096, huffman: true, examples: examples('C.4', C4_BLOCKS, REQUEST_HEADERS, REQUEST_TABLES) },
  { name: 'C.5', tableSize: 256, huffman: false, examples: examples('C.5', C5_BLOCKS, RESPONSE_HEADERS, RESPONSE_TABLES) },
  { name: 'C.6', tableSize: 256, huffman: true, examples: examples('C.6', C6_BLOCKS, RESPONSE_HEADERS, RESPONSE_TABLES) },
];

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('rebuilds the codes of Appendix B from the code lengths', () => {
    // A sample of Appendix B rows: [symbol, code, length].
    const rows: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [9, 0xffffea, 24],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [58, 0x5c, 7],
      [60, 0x7ffc, 15],
      [92, 0x7fff0, 19],
      [97, 0x3, 5],
      [122, 0x7b, 7],
      [126, 0x1ffd, 13],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [153, 0x1fffdc, 21],
      [195, 0x7fff1, 19],
      [199, 0x1ffffec, 25],
      [220, 0xffffffd, 28],
      [241, 0x7ffffe6, 27],
      [249, 0xffffffe, 28],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of rows) {
      expect([sym, HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]]).toEqual([sym, code, len]);
    }
  });

  it('round-trips every byte value', () => {
    const s = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const enc = Buffer.alloc(huffmanEncodedLength(s));
    expect(huffmanEncode(s, enc, 0)).toBe(enc.length);
    const out = Buffer.alloc(enc.length * 2);
    const n = huffmanDecode(enc, 0, enc.length, out);
    expect(out.toString('latin1', 0, n)).toBe(s);
  });

  it('encodes the Appendix C strings', () => {
    const enc = (s: string) => {
      const b = Buffer.alloc(huffmanEncodedLength(s));
      huffmanEncode(s, b, 0);
      return b.toString('hex');
    };
    expect(enc('www.example.com')).toBe('f1e3c2e5f23a6ba0ab90f4ff');
    expect(enc('no-cache')).toBe('a8eb10649cbf');
    expect(enc('custom-key')).toBe('25a849e95ba97d7f');
    expect(enc('custom-value')).toBe('25a849e95bb8e8b4bf');
  });

  it('rejects non-latin1 input in the length calculation', () => {
    expect(huffmanEncodedLength('\u0100')).toBe(-1);
  });
});

describe('RFC 7541 Appendix C.1 integers', () => {
  it('decodes 10 and 1337 with a 5-bit prefix (as size updates)', () => {
    const d = new HpackDecoder(4096);
    expect(d.decode(hex('2a'))).toEqual([]); // 10
    expect(d.decode(hex('3f9a0a'))).toEqual([]); // 1337
    const small = new HpackDecoder(1336);
    expect(() => small.decode(hex('3f9a0a'))).toThrow(HpackError);
  });

  it('encodes 10 and 1337 with a 5-bit prefix (as size updates)', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(10);
    expect(e.encode([]).toString('hex')).toBe('2a');
    e.setMaxTableSize(1337);
    expect(e.encode([]).toString('hex')).toBe('3f9a0a');
    expect(e.encode([]).toString('hex')).toBe('');
  });
});

describe('RFC 7541 Appendix C.2 header field representations', () => {
  it('C.2.1 literal with indexing', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))).toEqual([
      ['custom-key', 'custom-header'],
    ]);
    expect(sized(d.dynamicTable)).toEqual([['custom-key', 'custom-header', 55]]);
    expect(d.dynamicTableSize).toBe(55);
  });

  it('C.2.2 literal without indexing', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([[':path', '/sample/path']]);
    expect(d.dynamicTable).toEqual([]);
  });

  it('C.2.3 literal never indexed', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).toEqual([['password', 'secret']]);
    expect(d.dynamicTable).toEqual([]);
  });

  it('C.2.4 indexed', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('82'))).toEqual([[':method', 'GET']]);
    expect(d.dynamicTable).toEqual([]);
  });
});

describe.each(SEQUENCES)('RFC 7541 Appendix $name', ({ tableSize: maxSize, huffman, examples: exs }) => {
  it('decodes each block, with the dynamic table of the RFC after it', () => {
    const d = new HpackDecoder(maxSize);
    for (const ex of exs) {
      expect([ex.id, d.decode(hex(ex.block))]).toEqual([ex.id, ex.headers]);
      expect([ex.id, sized(d.dynamicTable)]).toEqual([ex.id, ex.table]);
      expect(d.dynamicTableSize).toBe(tableSize(ex.table));
    }
  });

  it('decodes a Uint8Array (not a Buffer) the same', () => {
    const d = new HpackDecoder(maxSize);
    const b = hex(exs[0].block);
    expect(d.decode(new Uint8Array(b))).toEqual(exs[0].headers);
  });

  it('encodes the same bytes when indexing everything', () => {
    // The encoder's default policy leaves out e.g. date; the RFC examples index everything.
    const e = new HpackEncoder(4096, { huffman, shouldIndex: () => true });
    if (maxSize !== 4096) e.setMaxTableSize(maxSize);
    exs.forEach((ex, i) => {
      let out = e.encode(ex.headers);
      if (i === 0 && maxSize !== 4096) {
        // The RFC's decoder starts at 256 already; ours announces it first: 256 = 31 + 225.
        expect(out.subarray(0, 3).toString('hex')).toBe('3fe101');
        out = out.subarray(3);
      }
      expect([ex.id, out.toString('hex')]).toEqual([ex.id, hex(ex.block).toString('hex')]);
      expect([ex.id, sized(e.dynamicTable)]).toEqual([ex.id, ex.table]);
    });
  });
});

describe('HpackEncoder', () => {
  const response: HeaderList = [
    [':status', '200'],
    ['content-type', 'application/grpc'],
    ['grpc-accept-encoding', 'identity,deflate,gzip'],
  ];
  const trailers: HeaderList = [
    ['grpc-status', '0'],
    ['grpc-message', ''],
  ];

  it('encodes repeated gRPC response headers to one byte each', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const first = e.encode(response);
    expect(d.decode(first)).toEqual(response);
    expect(d.decode(e.encode(trailers))).toEqual(trailers);
    const again = e.encode(response);
    expect(again.length).toBe(3);
    expect(d.decode(again)).toEqual(response);
    const t = e.encode([['grpc-status', '0']]);
    expect(t.length).toBe(1);
    expect(d.decode(t)).toEqual([['grpc-status', '0']]);
  });

  it('does not index grpc-message, date or content-length, and never indexes authorization', () => {
    const e = new HpackEncoder();
    const block = e.encode([
      ['grpc-message', 'oops'],
      ['date', 'x'],
      ['content-length', '12'],
      ['authorization', 'Bearer secret'],
    ]);
    expect(e.dynamicTable).toEqual([]);
    // authorization (static 23) as a never-indexed literal: 0001 prefix, 4-bit index 15 + 8.
    expect(block.includes(hex('1f08'))).toBe(true);
    expect(new HpackDecoder().decode(block)).toHaveLength(4);
  });

  it('does not index an entry taking most of the table', () => {
    const e = new HpackEncoder(256);
    e.encode([['x-big', 'v'.repeat(200)]]);
    expect(e.dynamicTable).toEqual([]);
  });

  it('uses Huffman only when not longer', () => {
    const e = new HpackEncoder(4096, { shouldIndex: () => false });
    // 'a' (a 5-bit code) is one byte either way: Huffman. '\xff\xfe' (26 + 27 bits): raw.
    expect(e.encode([['a', '\xff\xfe']]).toString('hex')).toBe('00' + '811f' + '02fffe');
  });

  it('signals table size changes and evicts; size 0 disables indexing', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    expect(d.decode(e.encode(response))).toEqual(response);
    expect(e.dynamicTable).toHaveLength(2);

    e.setMaxTableSize(0);
    d.maxTableSize = 0;
    expect(e.dynamicTable).toEqual([]);
    const b = e.encode(response);
    expect(b[0]).toBe(0x20); // size update to 0
    expect(d.decode(b)).toEqual(response);
    expect(e.dynamicTable).toEqual([]);
    expect(d.dynamicTable).toEqual([]);

    // Several changes between blocks: the smallest, then the last one are signalled.
    e.setMaxTableSize(100);
    e.setMaxTableSize(50);
    e.setMaxTableSize(4096);
    d.maxTableSize = 4096;
    const c = e.encode(response);
    expect(c.subarray(0, 5).toString('hex')).toBe('3f13' + '3fe11f'); // 50, then 4096
    expect(d.decode(c)).toEqual(response);
    expect(d.dynamicTable).toEqual(e.dynamicTable);
    expect(e.dynamicTable).toHaveLength(2);
  });

  it('announces a non-default initial table size in the first block', () => {
    const e = new HpackEncoder(0);
    const b = e.encode([[':status', '200']]);
    expect(b.toString('hex')).toBe('2088');
  });

  it('rejects chars above 0xff', () => {
    expect(() => new HpackEncoder().encode([['x', '\u20ac']])).toThrow(TypeError);
  });
});

describe('round trips', () => {
  const byte = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
  const latin1 = fc.string({ unit: byte, maxLength: 40 });
  const name = fc.oneof(
    fc.constantFrom(
      ':status',
      ':path',
      ':authority',
      'content-type',
      'grpc-status',
      'grpc-message',
      'grpc-timeout',
      'date',
      'authorization',
      'x-trace-bin',
      'te',
      'user-agent',
    ),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'.split('')), minLength: 1, maxLength: 12 }),
    latin1,
  );
  const value = fc.oneof(fc.constantFrom('', '0', '200', 'application/grpc', 'trailers', 'GET'), latin1);
  const headerList = fc.array(fc.tuple(name, value), { maxLength: 12 });
  const step = fc.oneof(
    { weight: 5, arbitrary: headerList.map((h) => ({ kind: 'block' as const, headers: h })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(0, 40, 100, 256, 1000, 4096, 10000).map((n) => ({ kind: 'size' as const, n })),
    },
  );

  it('decoder(encoder(headers)) === headers, with tables in step, across size changes', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 25 }), fc.boolean(), (steps, huffman) => {
        const e = new HpackEncoder(4096, { huffman });
        const d = new HpackDecoder(4096, { maxHeaderListSize: Infinity });
        for (const s of steps) {
          if (s.kind === 'size') {
            e.setMaxTableSize(s.n);
            d.maxTableSize = s.n; // as if the SETTINGS change were acknowledged right away
          } else {
            expect(d.decode(e.encode(s.headers))).toEqual(s.headers);
            expect(d.dynamicTable).toEqual(e.dynamicTable);
            expect(d.dynamicTableSize).toBe(e.dynamicTableSize);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('Huffman round-trips arbitrary byte strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), (s) => {
        const enc = Buffer.alloc(huffmanEncodedLength(s));
        expect(huffmanEncode(s, enc, 0)).toBe(enc.length);
        const out = Buffer.alloc(Math.ceil((enc.length * 8) / 5));
        const n = huffmanDecode(enc, 0, enc.length, out);
        expect(out.toString('latin1', 0, n)).toBe(s);
      }),
    );
  });
});

describe('malformed header blocks throw HpackError', () => {
  const cases: Array<[string, string]> = [
    ['truncated integer', 'ff'],
    ['truncated integer continuation', 'ff 80'],
    ['integer overflow', 'ff ff ff ff ff 0f'],
    ['overlong integer', 'ff 80 80 80 80 80 00'],
    ['index 0', '80'],
    ['index beyond the static table (empty dynamic table)', 'be'],
    ['literal name index beyond the table', '7f 03 01 61'],
    ['truncated string', '00 05 61'],
    ['missing value', '00 01 61'],
    ['Huffman with EOS', '00 01 61 84 ff ff ff ff'],
    ['Huffman padding longer than 7 bits', '00 01 61 82 1f ff'],
    ['Huffman padding not all ones', '00 01 61 81 18'],
    ['size update above the limit', '3f e2 1f'],
    ['size update after a field', '82 20'],
  ];
  it.each(cases)('%s', (_, block) => {
    expect(() => new HpackDecoder().decode(hex(block))).toThrow(HpackError);
  });

  it('accepts the valid neighbours of those cases', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('3f e1 1f'))).toEqual([]); // size update to exactly 4096
    expect(d.decode(hex('00 01 61 81 1f'))).toEqual([['a', 'a']]); // 'a' + 3 bits of padding
    expect(d.decode(hex('20 3f e1 1f 82'))).toEqual([[':method', 'GET']]); // two updates at the start
  });

  it('requires a size update after the limit drops below the table size', () => {
    const d = new HpackDecoder();
    d.maxTableSize = 100;
    expect(() => d.decode(hex('82'))).toThrow(HpackError);
    const d2 = new HpackDecoder();
    d2.maxTableSize = 100;
    expect(d2.decode(hex('3f 45 82'))).toEqual([[':method', 'GET']]); // update to 100
  });

  it('enforces maxHeaderListSize', () => {
    const d = new HpackDecoder(4096, { maxHeaderListSize: 130 });
    expect(d.decode(hex('82 86 84'))).toHaveLength(3); // 42 + 43 + 38 = 123 bytes
    expect(() => d.decode(hex('82 86 84 87'))).toThrow(HpackError);
    d.maxHeaderListSize = 1000;
    expect(d.decode(hex('82 86 84 87'))).toHaveLength(4);
  });
});

// ---- Against Node's own HTTP/2 (nghttp2) ----
//
// A bare-bones HTTP/2 server on a TCP socket decodes the requests of a node:http2 client with
// HpackDecoder and answers with HpackEncoder blocks.

const PREFACE_LENGTH = 24;
const T_HEADERS = 1;
const T_SETTINGS = 4;
const T_PING = 6;
const T_CONTINUATION = 9;
const F_ACK = 0x1;
const F_END_STREAM = 0x1;
const F_END_HEADERS = 0x4;
const F_PADDED = 0x8;
const F_PRIORITY = 0x20;
const SETTINGS_HEADER_TABLE_SIZE = 1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/**
 * Serves one connection: every request gets `respond(requestHeaders)` as response headers with
 * END_STREAM. Announces a 256-byte header table to exercise the client's size update.
 */
function startServer(
  respond: (req: HeaderList) => HeaderList,
  seen: HeaderList[],
  conn: { decoder?: HpackDecoder; encoder?: HpackEncoder },
): Promise<net.Server> {
  const server = net.createServer((sock) => {
    const decoder = (conn.decoder = new HpackDecoder(4096));
    const encoder = (conn.encoder = new HpackEncoder(4096));
    let buf = Buffer.alloc(0);
    let prefaceDone = false;
    let pending: { stream: number; parts: Buffer[] } | undefined;
    sock.write(frame(T_SETTINGS, 0, 0, Buffer.from([0, SETTINGS_HEADER_TABLE_SIZE, 0, 0, 1, 0]))); // 256
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceDone) {
        if (buf.length < PREFACE_LENGTH) return;
        buf = buf.subarray(PREFACE_LENGTH);
        prefaceDone = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3];
        const flags = buf[4];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        let payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === T_SETTINGS) {
          if (flags & F_ACK) {
            decoder.maxTableSize = 256; // our 256 is in force once acknowledged
          } else {
            for (let i = 0; i + 6 <= payload.length; i += 6) {
              if (payload.readUInt16BE(i) === SETTINGS_HEADER_TABLE_SIZE) encoder.setMaxTableSize(payload.readUInt32BE(i + 2));
            }
            sock.write(frame(T_SETTINGS, F_ACK, 0, Buffer.alloc(0)));
          }
        } else if (type === T_PING && !(flags & F_ACK)) {
          sock.write(frame(T_PING, F_ACK, 0, payload));
        } else if (type === T_HEADERS || type === T_CONTINUATION) {
          if (type === T_HEADERS) {
            let pad = 0;
            if (flags & F_PADDED) {
              pad = payload[0];
              payload = payload.subarray(1);
            }
            if (flags & F_PRIORITY) payload = payload.subarray(5);
            payload = payload.subarray(0, payload.length - pad);
            pending = { stream, parts: [] };
          }
          pending!.parts.push(payload);
          if (flags & F_END_HEADERS) {
            const req = decoder.decode(Buffer.concat(pending!.parts));
            seen.push(req);
            const block = encoder.encode(respond(req));
            sock.write(frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, pending!.stream, block));
            pending = undefined;
          }
        }
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers, { endStream: true });
    req.on('response', (h) => resolve(h));
    req.on('error', reject);
    // e.g. the stream reset over an error: fail fast rather than time out.
    req.on('close', () => reject(new Error(`stream closed, code ${req.rstCode}`)));
    req.resume();
  });
}

describe('HPACK with node:http2', () => {
  it('decodes what nghttp2 encodes and the other way round, over many requests', async () => {
    const seen: HeaderList[] = [];
    const conn: { decoder?: HpackDecoder; encoder?: HpackEncoder } = {};
    const server = await startServer(
      (req) => {
        const get = (n: string) => req.find(([k]) => k === n)?.[1] ?? '';
        return [
          [':status', '200'],
          ['content-type', 'application/grpc'],
          ['x-echo', get('x-value')],
          ['x-echo-bin', get('x-bin')],
          ['grpc-message', `request ${get('x-n')}`],
        ];
      },
      seen,
      conn,
    );
    const { port } = server.address() as net.AddressInfo;
    // The client announces a small header table: our encoder has to shrink and say so.
    const client = http2.connect(`http://127.0.0.1:${port}`, { settings: { headerTableSize: 100 } });
    try {
      for (let n = 0; n < 40; n++) {
        const value = n % 3 === 0 ? 'same value every third time' : `value ${n} ${'x'.repeat(n * 7)}`;
        const bin = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff)).toString('base64');
        const res = await request(client, {
          ':method': 'POST',
          ':path': '/etcdserverpb.KV/Range',
          'content-type': 'application/grpc',
          te: 'trailers',
          'x-n': String(n),
          'x-value': value,
          'x-bin': bin,
        });
        expect(res[':status']).toBe(200);
        expect(res['content-type']).toBe('application/grpc');
        expect(res['x-echo']).toBe(value);
        expect(res['x-echo-bin']).toBe(bin);
        expect(res['grpc-message']).toBe(`request ${n}`);
        const req = seen[seen.length - 1];
        expect(req).toEqual(
          expect.arrayContaining([
            [':method', 'POST'],
            [':path', '/etcdserverpb.KV/Range'],
            ['x-value', value],
            ['x-bin', bin],
          ]),
        );
      }
      // Both tables were in use and kept within the announced sizes.
      expect(conn.decoder!.dynamicTable.length).toBeGreaterThan(0);
      expect(conn.decoder!.dynamicTableSize).toBeLessThanOrEqual(256);
      expect(conn.encoder!.dynamicTable.length).toBeGreaterThan(0);
      expect(conn.encoder!.dynamicTableSize).toBeLessThanOrEqual(100);
    } finally {
      client.close();
      server.close();
    }
  }, 15000); // a table mismatch shows as COMPRESSION_ERROR, often as a hang: fail soon
});

// A client's request headers, once all in the tables (or when it does not index them), come
// as the same block every time; the decoder hands back the list it made the first time, for
// as long as the dynamic table does not change.
describe('blocks that leave the dynamic table unchanged', () => {
  const literal = (name: string, value: string): Buffer =>
    Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);

  it('decode to the current table, before and after it changes', () => {
    const d = new HpackDecoder();
    d.decode(literal('x-a', '1')); // index 62
    const block = hex('82 be'); // :method GET, then dynamic index 62
    const first = d.decode(block);
    expect(first).toEqual([[':method', 'GET'], ['x-a', '1']]);
    expect(d.decode(block)).toEqual(first);
    expect(Object.isFrozen(d.decode(block))).toBe(true);
    d.decode(literal('x-b', '2')); // now index 62; x-a moves to 63
    expect(d.decode(block)).toEqual([[':method', 'GET'], ['x-b', '2']]);
    expect(d.decode(hex('82 bf'))).toEqual([[':method', 'GET'], ['x-a', '1']]);
    // Literals not indexed (C.2.2, C.2.3) next to indexed fields.
    const mixed = Buffer.concat([hex('82'), hex('040c 2f73 616d 706c 652f 7061 7468'), hex('bf'), hex('1008 7061 7373 776f 7264 0673 6563 7265 74')]);
    const want = [[':method', 'GET'], [':path', '/sample/path'], ['x-a', '1'], ['password', 'secret']];
    expect(d.decode(mixed)).toEqual(want);
    expect(d.decode(mixed)).toEqual(want);
    expect(d.dynamicTableSize).toBe(2 * (3 + 1 + 32));
    d.decode(hex('20')); // size update to 0 empties the table
    expect(() => d.decode(block)).toThrow(HpackError);
    expect(() => d.decode(mixed)).toThrow(HpackError);
  });

  it('still need the size update the settings require, and still respect the list limit', () => {
    const d = new HpackDecoder();
    d.decode(literal('x-a', '1'));
    const block = hex('82 be');
    expect(d.decode(block)).toHaveLength(2);
    d.maxTableSize = 10; // below the table's size: the next block must start with an update
    expect(() => d.decode(block)).toThrow('missing dynamic table size update');
    const e = new HpackDecoder();
    e.decode(literal('x-a', '1'));
    expect(e.decode(block)).toHaveLength(2);
    e.maxHeaderListSize = 40; // 2 fields: 7 + 3 + 32 and 3 + 1 + 32
    expect(() => e.decode(block)).toThrow('header list too large');
  });

  it('agree with decoding that keeps no lists, on random sequences of blocks', () => {
    // A size update to the size the table already has changes nothing, and a block that
    // starts with one is never taken for a known indexed block.
    const unchanged = hex('3fe11f'); // 4096
    const indexed = fc.constantFrom(0x82, 0xbe, 0xbf).map((b) => Buffer.from([b]));
    const notIndexed = fc.constantFrom(hex('040c 2f73 616d 706c 652f 7061 7468'), hex('1008 7061 7373 776f 7264 0673 6563 7265 74'), hex('0f2b 03 616263'));
    const field = fc.oneof(indexed, indexed, notIndexed);
    const block = fc.oneof(fc.array(field, { minLength: 1, maxLength: 3 }).map((bs) => Buffer.concat(bs)), fc.constant(literal('x-c', 'v')), fc.constant(literal('x-d', 'w')));
    const outcome = (f: () => HeaderList): unknown => {
      try {
        return f();
      } catch (e) {
        return (e as Error).message;
      }
    };
    fc.assert(
      fc.property(fc.array(block, { maxLength: 16 }), (blocks) => {
        const cached = new HpackDecoder();
        const plain = new HpackDecoder();
        for (const b of blocks) {
          const want = outcome(() => plain.decode(Buffer.concat([unchanged, b])));
          expect(outcome(() => cached.decode(b))).toEqual(want);
          if (typeof want === 'string') return; // the connection would end here
        }
      }),
      { numRuns: 300 },
    );
  });
});
