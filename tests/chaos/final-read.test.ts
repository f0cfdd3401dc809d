import { firstAnswer } from '../../src/chaos/final-read';

describe('firstAnswer (the final state read after the full restart)', () => {
  it('tries every member once even when the deadline has passed (long history reads)', async () => {
    const tried: number[] = [];
    const got = await firstAnswer([0, 1, 2], async (i) => {
      tried.push(i);
      if (i < 2) throw new Error('unavailable');
      return `state from ${i}`;
    }, 0, () => 1000);
    expect(got).toBe('state from 2');
    expect(tried).toEqual([0, 1, 2]);
  });

  it('goes round again until the deadline, then gives up', async () => {
    let t = 0;
    const tried: number[] = [];
    const got = await firstAnswer([0, 1], async (i) => {
      tried.push(i);
      t += 10;
      throw new Error('unavailable');
    }, 45, () => t);
    expect(got).toBeUndefined();
    expect(tried).toEqual([0, 1, 0, 1, 0]);
  });

  it('stops at the first answer', async () => {
    const tried: number[] = [];
    expect(await firstAnswer([0, 1, 2, 3, 4], async (i) => (tried.push(i), i), 0)).toBe(0);
    expect(tried).toEqual([0]);
  });

  it('tries only the members given (a member removed and never added back is left out)', async () => {
    const tried: number[] = [];
    const got = await firstAnswer([0, 2], async (i) => {
      tried.push(i);
      throw new Error('unavailable');
    }, 0, () => 1000);
    expect(got).toBeUndefined();
    expect(tried).toEqual([0, 2]);
  });

  it('gives up at once when no member is given', async () => {
    expect(await firstAnswer([], async () => 'never', 1e12)).toBeUndefined();
  });
});
