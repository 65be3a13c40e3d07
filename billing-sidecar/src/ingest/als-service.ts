import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@tollgate/common';
import type { AccessLogServiceHandlers, StreamAccessLogsMessage, StreamAccessLogsResponse } from '@tollgate/proto';
import type { BillableRule } from '../domain/billable.js';
import { fromAlsEntry, type UsageRecord } from '../domain/usage-record.js';
import type { BillingMetrics } from '../metrics.js';
import type { UsageWriter } from '../stores/usage-writer.js';

/**
 * `envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`: Envoy keeps one client stream
 * per worker thread open and sends entries in batches, never waiting for an answer. Entries are
 * handed to the writer as they arrive, so a stream that breaks mid-way loses nothing it sent.
 * When the writer's buffer is full the stream is paused (HTTP/2 flow control then slows Envoy,
 * whose access-log buffer drops entries past its limit; the JSON file log still has them).
 */
export function createAlsHandlers(deps: { writer: UsageWriter; rule: BillableRule; metrics: BillingMetrics; logger: Logger }): AccessLogServiceHandlers {
  const { writer, rule, metrics, logger } = deps;
  return {
    StreamAccessLogs(call: grpc.ServerReadableStream<StreamAccessLogsMessage, StreamAccessLogsResponse>, callback) {
      let logName = '';
      call.on('data', (msg: StreamAccessLogsMessage) => {
        if (msg.identifier?.logName) logName = msg.identifier.logName;
        const entries = msg.httpLogs?.logEntry ?? [];
        if (entries.length === 0) return;
        metrics.entriesReceived.inc({ source: 'als' }, entries.length);
        const records: UsageRecord[] = [];
        const now = new Date();
        for (const entry of entries) {
          const r = fromAlsEntry(entry, rule, now);
          if ('record' in r) records.push(r.record);
          else metrics.entriesSkipped.inc({ source: 'als', reason: r.skip });
        }
        void writer.add(records);
        if (!writer.hasRoom()) {
          call.pause();
          void writer.waitForRoom().then(() => call.resume());
        }
      });
      call.on('error', (err) => {
        // Envoy resetting the stream (restart, drain) is routine; what it sent is already buffered.
        logger.debug({ err: err.message, logName }, 'access log stream ended with an error');
      });
      call.on('end', () => callback(null, {}));
    },
  };
}
