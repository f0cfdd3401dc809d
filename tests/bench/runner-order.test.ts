// Which system runs first alternates by unit and by run, so that neither always follows the
// other's teardown.

import { systemOrder, systems } from '../../bench/runner';

describe('systemOrder', () => {
  test('alternates from one unit to the next and from one run to the next', () => {
    expect(systemOrder(0, 0)).toEqual(['skiff', 'etcd']);
    expect(systemOrder(0, 1)).toEqual(['etcd', 'skiff']);
    expect(systemOrder(1, 0)).toEqual(['etcd', 'skiff']);
    expect(systemOrder(1, 1)).toEqual(['skiff', 'etcd']);
  });

  test('over three runs of six units each system goes first as often as the other, and every unit sees both', () => {
    const first = new Map<string, number>();
    for (let run = 0; run < 3; run++) {
      for (let unit = 0; unit < 6; unit++) {
        const order = systemOrder(run, unit);
        expect([...order].sort()).toEqual([...systems].sort());
        first.set(order[0], (first.get(order[0]) ?? 0) + 1);
      }
    }
    expect(first.get('skiff')).toBe(9);
    expect(first.get('etcd')).toBe(9);
  });
});
