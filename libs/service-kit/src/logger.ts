import pino, { type Logger } from 'pino';
import { trace, context } from '@opentelemetry/api';

export type { Logger };

/** The longest string a log line carries in any field (issue 12: a 1 MiB run_id was echoed into a 1 MiB line). */
export const MAX_LOGGED_STRING = 4096;

/** `value` with every string longer than `max` characters cut there, saying how much was cut. */
export function clipStrings(value: unknown, max = MAX_LOGGED_STRING, depth = 0): unknown {
  if (typeof value === 'string') return value.length <= max ? value : `${value.slice(0, max)}… (${value.length - max} more characters)`;
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => clipStrings(v, max, depth + 1));
  if (value instanceof Error) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = clipStrings(v, max, depth + 1);
  return out;
}

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
      formatters: { log: (object) => clipStrings(object) as Record<string, unknown> },
      hooks: {
        // The message itself (logger.info(obj, msg)): clipped like every field.
        logMethod(args, method) {
          const last = args.length - 1;
          if (typeof args[last] === 'string') args[last] = clipStrings(args[last]) as string;
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
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
