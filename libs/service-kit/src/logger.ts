import pino, { type Logger } from 'pino';
import { trace, context } from '@opentelemetry/api';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays free for what a command prints), one object per line, with the
 * active trace and span ids so a log line can be found from its trace. LOG_LEVEL sets the level (default info).
 * The line is proto/alignment/v1/formats.proto's LogLine, as the Python trainer's (docs/formats.md).
 */
export function createLogger(service: string): Logger {
  return pino(
    {
      name: service,
      level: process.env.LOG_LEVEL ?? 'info',
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const span = trace.getSpan(context.active());
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
