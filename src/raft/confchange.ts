// Membership changes: simple (one voter at a time) and joint consensus (enter/leave joint),
// learners, promotion and demotion. A Changer works on copies and returns the new
// configuration and progress map; the caller switches to them atomically.

import { RaftError } from './errors';
import { JointConfig, MajorityConfig } from './quorum';
import { Progress, ProgressTracker, TrackerConfig } from './tracker';
import { ConfChangeSingle, ConfChangeV2, ConfState, NodeId } from './types';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(cc: ConfChangeV2): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChangeV2 {
  return JSON.parse(decoder.decode(data)) as ConfChangeV2;
}

/** The empty change leaves a joint configuration. */
export function isLeaveJoint(cc: ConfChangeV2): boolean {
  return cc.changes.length === 0;
}

/**
 * Whether cc enters a joint configuration, and if so whether it is left automatically.
 * 'auto' uses a simple change when at most one change is asked for.
 */
export function entersJoint(cc: ConfChangeV2): { joint: boolean; autoLeave: boolean } {
  if (cc.transition !== 'auto' || cc.changes.length > 1) {
    return { joint: true, autoLeave: cc.transition === 'auto' || cc.transition === 'implicit' };
  }
  return { joint: false, autoLeave: false };
}

interface Working {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
  progress: Map<NodeId, Progress>;
}

export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

export class Changer {
  constructor(
    private readonly tracker: ProgressTracker,
    private readonly lastIndex: number,
  ) {}

  enterJoint(autoLeave: boolean, changes: ConfChangeSingle[]): ChangeResult {
    const w = this.copy();
    if (w.outgoing.size > 0) throw new RaftError('ERR_CONF_CHANGE', 'config is already joint');
    if (w.incoming.size === 0) throw new RaftError('ERR_CONF_CHANGE', "can't make a zero-voter config joint");
    for (const id of w.incoming) w.outgoing.add(id);
    this.apply(w, changes);
    w.autoLeave = autoLeave;
    return this.finish(w);
  }

  leaveJoint(): ChangeResult {
    const w = this.copy();
    if (w.outgoing.size === 0) throw new RaftError('ERR_CONF_CHANGE', "can't leave a non-joint config");
    for (const id of w.learnersNext) {
      w.learners.add(id);
      w.progress.get(id)!.isLearner = true;
    }
    w.learnersNext.clear();
    for (const id of w.outgoing) {
      if (!w.incoming.has(id) && !w.learners.has(id)) w.progress.delete(id);
    }
    w.outgoing.clear();
    w.autoLeave = false;
    return this.finish(w);
  }

  /** A change of at most one voter, without a joint state. */
  simple(changes: ConfChangeSingle[]): ChangeResult {
    const w = this.copy();
    if (w.outgoing.size > 0) throw new RaftError('ERR_CONF_CHANGE', "can't apply simple config change in joint config");
    const before = new Set(w.incoming);
    this.apply(w, changes);
    let changed = 0;
    for (const id of before) if (!w.incoming.has(id)) changed++;
    for (const id of w.incoming) if (!before.has(id)) changed++;
    if (changed > 1) throw new RaftError('ERR_CONF_CHANGE', 'more than one voter changed without entering joint config');
    return this.finish(w);
  }

  /** Builds the configuration described by a ConfState (on start and on snapshot restore). */
  restore(cs: ConfState): ChangeResult {
    const w: Working = {
      incoming: new Set(),
      outgoing: new Set(cs.votersOutgoing),
      learners: new Set(),
      learnersNext: new Set(),
      autoLeave: cs.autoLeave,
      progress: new Map(),
    };
    for (const id of cs.votersOutgoing) this.initProgress(w, id, false, false);
    for (const id of cs.voters) this.makeVoter(w, id);
    for (const id of cs.learners) this.makeLearner(w, id);
    for (const id of cs.learnersNext) this.makeLearner(w, id);
    return this.finish(w);
  }

  private apply(w: Working, changes: ConfChangeSingle[]): void {
    for (const c of changes) {
      if (c.nodeId === 0) continue; // etcd ignores changes for node 0
      switch (c.type) {
        case 'addNode':
          this.makeVoter(w, c.nodeId);
          break;
        case 'addLearner':
          this.makeLearner(w, c.nodeId);
          break;
        case 'removeNode':
          this.remove(w, c.nodeId);
          break;
        default:
          throw new RaftError('ERR_CONF_CHANGE', `unexpected conf type ${String((c as ConfChangeSingle).type)}`);
      }
    }
    if (w.incoming.size === 0) throw new RaftError('ERR_CONF_CHANGE', 'removed all voters');
  }

  private makeVoter(w: Working, id: NodeId): void {
    const pr = w.progress.get(id);
    if (!pr) {
      this.initProgress(w, id, false, true);
      return;
    }
    pr.isLearner = false;
    w.learners.delete(id);
    w.learnersNext.delete(id);
    w.incoming.add(id);
  }

  private makeLearner(w: Working, id: NodeId): void {
    const pr = w.progress.get(id);
    if (!pr) {
      this.initProgress(w, id, true, true);
      return;
    }
    if (pr.isLearner) return;
    // Drop it as a voter of the incoming config, keeping its progress.
    this.remove(w, id);
    w.progress.set(id, pr);
    if (w.outgoing.has(id)) {
      // Still a voter of the outgoing config: becomes a learner when the joint state is left.
      w.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      w.learners.add(id);
    }
  }

  private remove(w: Working, id: NodeId): void {
    if (!w.progress.has(id)) return;
    w.incoming.delete(id);
    w.learners.delete(id);
    w.learnersNext.delete(id);
    if (!w.outgoing.has(id)) w.progress.delete(id);
  }

  private initProgress(w: Working, id: NodeId, isLearner: boolean, addToConfig: boolean): void {
    if (addToConfig) {
      if (isLearner) w.learners.add(id);
      else w.incoming.add(id);
    }
    const pr = new Progress(Math.max(this.lastIndex, 1), this.tracker.newInflights(), isLearner);
    // A new peer counts as active so that CheckQuorum does not step the leader down at once.
    pr.recentActive = true;
    w.progress.set(id, pr);
  }

  private copy(): Working {
    const c = this.tracker.config;
    const progress = new Map<NodeId, Progress>();
    for (const [id, pr] of this.tracker.progress) progress.set(id, pr.clone());
    return {
      incoming: new Set(c.voters.incoming.ids),
      outgoing: new Set(c.voters.outgoing.ids),
      learners: new Set(c.learners),
      learnersNext: new Set(c.learnersNext),
      autoLeave: c.autoLeave,
      progress,
    };
  }

  private finish(w: Working): ChangeResult {
    checkInvariants(w);
    return {
      config: {
        voters: new JointConfig(new MajorityConfig(w.incoming), new MajorityConfig(w.outgoing)),
        learners: w.learners,
        learnersNext: w.learnersNext,
        autoLeave: w.autoLeave,
      },
      progress: w.progress,
    };
  }
}

function checkInvariants(w: Working): void {
  const fail = (m: string): never => {
    throw new RaftError('ERR_CONF_CHANGE', m);
  };
  for (const ids of [w.incoming, w.outgoing, w.learners, w.learnersNext]) {
    for (const id of ids) if (!w.progress.has(id)) fail(`no progress for ${id}`);
  }
  for (const id of w.learnersNext) {
    if (!w.outgoing.has(id)) fail(`${id} is in LearnersNext, but not Voters[1]`);
    if (w.progress.get(id)!.isLearner) fail(`${id} is in LearnersNext, but is already marked as learner`);
  }
  for (const id of w.learners) {
    if (w.outgoing.has(id)) fail(`${id} is in Learners and Voters[1]`);
    if (w.incoming.has(id)) fail(`${id} is in Learners and Voters[0]`);
    if (!w.progress.get(id)!.isLearner) fail(`${id} is in Learners, but is not marked as learner`);
  }
  if (w.outgoing.size === 0) {
    if (w.learnersNext.size > 0) fail('cfg.LearnersNext must be nil when not joint');
    if (w.autoLeave) fail('AutoLeave must be false when not joint');
  }
}
