// Protobuf-encoded sizes of watch responses, and etcd's fragmenting of a response whose
// size reaches the limit (v3rpc sendFragments). Sizes are exact for the body; the header,
// which the service adds, is counted at its largest.

import type { KeyValue, MvccEvent, WatchResponse } from './types';

/** ResponseHeader at its largest: four varint fields (tag + 10 bytes) inside tag + length. */
export const responseHeaderBytesMax = 2 + 4 * 11;

function varintBytes(n: number): number {
  if (n < 0) return 10; // negative int64: two's complement, always ten bytes
  let bytes = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

/** A varint field (tags below 16 take one byte); zero is not encoded. */
function varintField(value: number): number {
  return value === 0 ? 0 : 1 + varintBytes(value);
}

/** A length-delimited field with a one-byte tag. */
function delimitedField(length: number): number {
  return 1 + varintBytes(length) + length;
}

function bytesField(length: number): number {
  return length === 0 ? 0 : delimitedField(length);
}

export function keyValueBytes(kv: KeyValue): number {
  return (
    bytesField(kv.key.length) +
    varintField(kv.createRevision) +
    varintField(kv.modRevision) +
    varintField(kv.version) +
    bytesField(kv.value.length) +
    varintField(kv.lease)
  );
}

export function eventBytes(ev: MvccEvent): number {
  // type: PUT is the enum's zero value and is not encoded; DELETE = 1.
  let size = ev.type === 'DELETE' ? 2 : 0;
  size += delimitedField(keyValueBytes(ev.kv));
  if (ev.prevKv !== undefined) size += delimitedField(keyValueBytes(ev.prevKv));
  return size;
}

/** Bytes of the `events` field entry for one event (field 11, one-byte tag). */
function eventEntryBytes(ev: MvccEvent): number {
  return delimitedField(eventBytes(ev));
}

function responseBytesWithoutEvents(r: WatchResponse): number {
  return (
    responseHeaderBytesMax +
    varintField(r.watch_id) +
    (r.created ? 2 : 0) +
    (r.canceled ? 2 : 0) +
    varintField(r.compact_revision) +
    bytesField(Buffer.byteLength(r.cancel_reason)) +
    (r.fragment ? 2 : 0)
  );
}

export function watchResponseBytes(r: WatchResponse): number {
  let size = responseBytesWithoutEvents(r);
  for (const ev of r.events) size += eventEntryBytes(ev);
  return size;
}

/**
 * etcd's fragmenting: a response under `bytesMax`, or with fewer than two events, goes
 * whole. Otherwise each fragment takes events while it stays under the limit (always at
 * least one event, however large); every fragment but the last has fragment=true.
 */
export function fragmentResponse(r: WatchResponse, bytesMax: number): WatchResponse[] {
  if (r.events.length < 2 || watchResponseBytes(r) < bytesMax) return [r];
  const base = responseBytesWithoutEvents({ ...r, fragment: true });
  const fragments: WatchResponse[] = [];
  let i = 0;
  while (i < r.events.length) {
    const events: MvccEvent[] = [];
    let size = base;
    while (i < r.events.length) {
      const entry = eventEntryBytes(r.events[i]);
      if (events.length >= 1 && size + entry >= bytesMax) break;
      events.push(r.events[i]);
      size += entry;
      i++;
    }
    fragments.push({ ...r, events, fragment: i < r.events.length });
  }
  return fragments;
}
