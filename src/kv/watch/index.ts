// Public face of the watch hub. The gRPC Watch service and the server import only this.
//
//   const hub = new WatchHub({ source, responseBytesMax: watchResponseBytesMaxFor(maxRequestBytes) });
//   const stream = hub.newStream(sink);        // one per gRPC Watch call
//   call.on('data', (req) => { if (!stream.request(req)) call.pause(); });
//   sink drain → call.resume() once stream.acceptsRequests
//   call.on('end'/'cancelled'/'error', () => stream.close());

export { WatchHub } from './watch-hub';
export type { WatchHubOptions } from './watch-hub';
export { WatchStream, watchCancelReasons, invalidWatchId } from './watch-stream';
export {
  watchLimitsDefault,
  progressNotifyIntervalMsDefault,
  progressNotifyJitterRatio,
  grpcOverheadBytes,
  maxRequestBytesDefault,
  watchResponseBytesMaxFor,
} from './limits';
export type { WatchLimits } from './limits';
export { eventLoopScheduler } from './scheduler';
export type { Scheduler } from './scheduler';
export { watchResponseBytes, fragmentResponse } from './response-size';
export type {
  KeyValue,
  MvccEvent,
  RevisionEvents,
  Disposable,
  WatchSource,
  WatchHistory,
  WatchSink,
  WatchFilterType,
  WatchCreateRequest,
  WatchCancelRequest,
  WatchRequest,
  WatchResponse,
  WatchMetrics,
} from './types';
