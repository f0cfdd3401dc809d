// SKIFF_HEAP_GROWING_PERCENT: how far V8's old generation may grow past its last live size.

import { heapGrowingPercent, heapGrowingPercentDefault } from '../../src/cli/commands/store';

describe('heapGrowingPercent', () => {
  test("unset or empty: 0, V8's own heuristics", () => {
    expect(heapGrowingPercentDefault).toBe(0);
    expect(heapGrowingPercent(undefined)).toBe(0);
    expect(heapGrowingPercent('')).toBe(0);
  });

  test('a whole number is taken as it is', () => {
    expect(heapGrowingPercent('50')).toBe(50);
    expect(heapGrowingPercent('0')).toBe(0);
  });

  test('anything else is refused with the variable named', () => {
    for (const bad of ['-1', '1.5', 'fifty']) expect(() => heapGrowingPercent(bad)).toThrow(/SKIFF_HEAP_GROWING_PERCENT must be a whole number >= 0/);
  });
});
