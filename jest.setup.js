// Service logs are JSON lines on stderr; in test output only warnings and errors are worth reading.
process.env.LOG_LEVEL ??= 'warn';
// Services under test bind loopback (a service's default, every interface, is for pods, where plaintext is refused
// unless ALLOW_PLAINTEXT=1: libs/service-kit/src/tls-config.ts). Spawned services inherit it.
process.env.HOST ??= '127.0.0.1';
