// Plans membership changes for the workload: given the configuration a leader has applied,
// a valid ConfChangeV2 that keeps the number of voters within bounds, so that a run never
// makes progress impossible. Valid means etcd's rules: a simple change touches at most one
// voter and needs a non-joint configuration; a joint change needs a non-joint configuration
// and leaves at least one voter; only a joint configuration can be left.

import { ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState, NodeId } from '../types';
import { SimRandom } from './sim-random';

/** The change that leaves a joint configuration. */
export const leaveJoint: ConfChangeV2 = Object.freeze({ transition: 'auto', changes: [] }) as ConfChangeV2;

export interface MembershipBounds {
  votersMin: number;
  votersMax: number;
}

export function isJoint(cs: ConfState): boolean {
  return cs.votersOutgoing.length > 0;
}

/** Voters and learners after `changes` (the incoming side, as the planner needs it). */
export function plannedMembers(cs: ConfState, changes: readonly ConfChangeSingle[]): { voters: NodeId[]; learners: NodeId[] } {
  const voters = new Set(cs.voters);
  const learners = new Set([...cs.learners, ...cs.learnersNext]);
  for (const c of changes) {
    if (c.type === 'addNode') {
      learners.delete(c.nodeId);
      voters.add(c.nodeId);
    } else if (c.type === 'addLearner') {
      voters.delete(c.nodeId);
      learners.add(c.nodeId);
    } else {
      voters.delete(c.nodeId);
      learners.delete(c.nodeId);
    }
  }
  const byId = (a: number, b: number): number => a - b;
  return { voters: [...voters].sort(byId), learners: [...learners].sort(byId) };
}

/**
 * A change to propose at a leader whose applied configuration is `cs`, or undefined if none
 * fits. `freshId` is a never-used id the plan may add (undefined: adding is not possible now).
 */
export function planConfChange(rng: SimRandom, cs: ConfState, bounds: MembershipBounds, freshId: NodeId | undefined): ConfChangeV2 | undefined {
  if (isJoint(cs)) return cs.autoLeave ? undefined : leaveJoint;
  const voters = cs.voters;
  const learners = cs.learners;
  type Plan = () => ConfChangeV2;
  const plans: Plan[] = [];
  const transition = (): ConfChangeTransition => rng.pick(['auto', 'implicit', 'explicit'] as const);
  if (freshId !== undefined) plans.push(() => ({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: freshId }] }));
  if (learners.length > 0 && voters.length < bounds.votersMax) {
    plans.push(() => ({ transition: 'auto', changes: [{ type: 'addNode', nodeId: rng.pick(learners) }] }));
  }
  if (voters.length > bounds.votersMin) {
    plans.push(() => ({ transition: 'auto', changes: [{ type: 'removeNode', nodeId: rng.pick(voters) }] }));
    plans.push(() => ({ transition: 'auto', changes: [{ type: 'addLearner', nodeId: rng.pick(voters) }] }));
  }
  if (learners.length > 0) plans.push(() => ({ transition: 'auto', changes: [{ type: 'removeNode', nodeId: rng.pick(learners) }] }));
  if (learners.length > 0) {
    // Replace a voter by a learner: two voter changes, so joint consensus.
    plans.push(() => ({
      transition: transition(),
      changes: [
        { type: 'addNode', nodeId: rng.pick(learners) },
        { type: 'removeNode', nodeId: rng.pick(voters) },
      ],
    }));
  }
  if (learners.length > 0 && voters.length > bounds.votersMin) {
    // Swap roles: promote a learner, demote a voter.
    plans.push(() => {
      const promoted = rng.pick(learners);
      return {
        transition: transition(),
        changes: [
          { type: 'addLearner', nodeId: rng.pick(voters) },
          { type: 'addNode', nodeId: promoted },
        ],
      };
    });
  }
  if (freshId !== undefined && voters.length > bounds.votersMin) {
    // A brand-new voter in, an old voter out, in one joint step.
    plans.push(() => ({
      transition: transition(),
      changes: [
        { type: 'addNode', nodeId: freshId },
        { type: 'removeNode', nodeId: rng.pick(voters) },
      ],
    }));
  }
  // Joint with learner-only changes too (auto with several changes always goes joint).
  if (freshId !== undefined && learners.length > 0) {
    plans.push(() => ({
      transition: transition(),
      changes: [
        { type: 'addLearner', nodeId: freshId },
        { type: 'removeNode', nodeId: rng.pick(learners) },
      ],
    }));
  }
  if (plans.length === 0) return undefined;
  const cc = rng.pick(plans)();
  const after = plannedMembers(cs, cc.changes);
  if (after.voters.length < Math.min(bounds.votersMin, voters.length) || after.voters.length === 0) return undefined;
  if (after.voters.length > bounds.votersMax) return undefined;
  return cc;
}

/** A follow-up simple change planned as if `first` (a simple change) had been applied. */
export function planSecondConfChange(rng: SimRandom, cs: ConfState, first: ConfChangeV2, bounds: MembershipBounds): ConfChangeV2 | undefined {
  if (first.changes.length !== 1 || first.transition !== 'auto') return leaveJoint;
  const after = plannedMembers(cs, first.changes);
  const next: ConfState = { ...cs, voters: after.voters, learners: after.learners, votersOutgoing: [], learnersNext: [] };
  const cc = planConfChange(rng, next, bounds, undefined);
  if (cc === undefined || cc.changes.length !== 1) return undefined;
  return cc;
}

export function changedIds(cc: ConfChangeV2): NodeId[] {
  return cc.changes.map((c) => c.nodeId);
}
