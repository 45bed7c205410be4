// Service logs are JSON lines on stderr; in test output only warnings and errors are worth reading.
process.env.LOG_LEVEL ??= 'warn';
