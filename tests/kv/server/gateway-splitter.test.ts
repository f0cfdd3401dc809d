// The gateway's reader of a request stream of concatenated JSON objects.

import { JsonObjectSplitter } from '../../../src/kv/server/gateway';

describe('JsonObjectSplitter', () => {
  test('objects split across chunks, strings with braces and escapes, whitespace between', () => {
    const s = new JsonObjectSplitter();
    const text = '{"a":"}{\\"x"} \n{"b":{"c":[1,{"d":2}]}}\t{"e":"\\\\"}';
    const got: string[] = [];
    for (let i = 0; i < text.length; i += 3) got.push(...s.push(text.slice(i, i + 3)));
    expect(got.map((t) => JSON.parse(t))).toEqual([{ a: '}{"x' }, { b: { c: [1, { d: 2 }] } }, { e: '\\' }]);
  });

  test('an incomplete object waits for more', () => {
    const s = new JsonObjectSplitter();
    expect(s.push('{"create_request":{"key":')).toEqual([]);
    expect(s.push('"Zm9v"}}')).toEqual(['{"create_request":{"key":"Zm9v"}}']);
  });

  test('garbage between objects is an error', () => {
    const s = new JsonObjectSplitter();
    expect(() => s.push('{"a":1} x')).toThrow(/invalid character 'x'/);
  });
});
