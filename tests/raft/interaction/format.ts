// Human-readable, stable renderings of Raft data for golden traces.

import { ConfState, decodeConfChange, Entry, EntryType, HardState, Message, Ready } from '../../../src/raft';

const decoder = new TextDecoder();

export function formatEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    const changes = cc.changes.map((c) => `${c.type === 'addNode' ? 'v' : c.type === 'addLearner' ? 'l' : 'r'}${c.nodeId}`).join(' ');
    return `${e.term}/${e.index} EntryConfChangeV2${changes ? ' ' + changes : ''}${cc.transition !== 'auto' ? ` transition=${cc.transition}` : ''}`;
  }
  return `${e.term}/${e.index} EntryNormal ${JSON.stringify(decoder.decode(e.data))}`;
}

export function formatEntries(es: Entry[]): string {
  return es.map(formatEntry).join(', ');
}

export function formatMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${formatEntries(m.entries)}]`;
  if (m.context !== undefined && m.context !== '') s += ` Context:${m.context}`;
  if (m.snapshot) s += ` Snapshot: Index:${m.snapshot.metadata.index} Term:${m.snapshot.metadata.term} ConfState:${formatConfState(m.snapshot.metadata.confState)}`;
  return s;
}

export function formatHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function formatConfState(cs: ConfState): string {
  let s = `Voters:[${cs.voters.join(' ')}]`;
  if (cs.votersOutgoing.length > 0) s += ` VotersOutgoing:[${cs.votersOutgoing.join(' ')}]`;
  s += ` Learners:[${cs.learners.join(' ')}]`;
  if (cs.learnersNext.length > 0) s += ` LearnersNext:[${cs.learnersNext.join(' ')}]`;
  if (cs.autoLeave) s += ' AutoLeave:true';
  return s;
}

export function formatReady(rd: Ready): string[] {
  const out: string[] = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState) out.push(`State:${rd.softState.raftState}`);
  if (rd.hardState) out.push(`HardState ${formatHardState(rd.hardState)}`);
  if (rd.snapshot) out.push(`Snapshot Index:${rd.snapshot.metadata.index} Term:${rd.snapshot.metadata.term} ${formatConfState(rd.snapshot.metadata.confState)}`);
  if (rd.entries.length > 0) {
    out.push('Entries:');
    for (const e of rd.entries) out.push(formatEntry(e));
  }
  if (rd.committedEntries.length > 0) {
    out.push('CommittedEntries:');
    for (const e of rd.committedEntries) out.push(formatEntry(e));
  }
  if (rd.messages.length > 0) {
    out.push('Messages:');
    for (const m of rd.messages) out.push(formatMessage(m));
  }
  if (rd.messagesAfterPersist.length > 0) {
    out.push('MessagesAfterPersist:');
    for (const m of rd.messagesAfterPersist) out.push(formatMessage(m));
  }
  if (rd.readStates.length > 0) {
    out.push('ReadStates:');
    for (const r of rd.readStates) out.push(`Index:${r.index} Context:${r.context}`);
  }
  return out;
}
