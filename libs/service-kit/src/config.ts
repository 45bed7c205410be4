/** The port a service listens on: $PORT, else its documented default (coordinator 50051 … trainer 50055). */
export function portFromEnv(defaultPort: number): number {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return defaultPort;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be an integer in [0, 65535], got '${raw}'`);
  }
  return port;
}

export const DEFAULT_PORTS = {
  coordinator: 50051,
  generator: 50052,
  judge: 50053,
  'dro-solver': 50054,
  trainer: 50055,
} as const;
