// SKIFF_HEAP_GROWING_PERCENT: how far V8's old generation may grow past its last live size.

import { heapGrowingPercent, heapGrowingPercentDefault } from '../../src/cli/commands/store';

describe('heapGrowingPercent', () => {
  test('unset or empty: the default of 50', () => {
    expect(heapGrowingPercentDefault).toBe(50);
    expect(heapGrowingPercent(undefined)).toBe(50);
    expect(heapGrowingPercent('')).toBe(50);
  });

  test('a whole number is taken as it is; 0 gives V8 its own heuristics', () => {
    expect(heapGrowingPercent('100')).toBe(100);
    expect(heapGrowingPercent('0')).toBe(0);
  });

  test('anything else is refused with the variable named', () => {
    for (const bad of ['-1', '1.5', 'fifty']) expect(() => heapGrowingPercent(bad)).toThrow(/SKIFF_HEAP_GROWING_PERCENT must be a whole number >= 0/);
  });
});
