import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { createLogger, shutdownTracing, startServer } from '@alignment/service-kit';
import { grpcExecutors } from './clients/grpc-executors';
import { kubernetesLearnExecutorFromEnv } from './clients/kubernetes';
import { configFromEnv, databasePath } from './config';
import { TokenAuthenticator, type CallAuthenticator } from './auth';
import { CertificateAuthenticator, parsePrincipals } from './cert-auth';
import { DataDirLock } from './data-dir-lock';
import { RunEngine, RunStore } from './run';
import { coordinatorBinding } from './service';

// Serves alignment.v1.Coordinator in the foreground on $PORT (default 50051) until SIGTERM/SIGINT, after resuming
// every run that was RUNNING when the previous coordinator stopped or died. Configuration: src/config.ts.
async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = createLogger('coordinator');
  // Before anything reads the database: a second coordinator on this DATA_DIR refuses to start (exit 1).
  const lock = DataDirLock.acquire(config.dataDir);
  const store = RunStore.open(databasePath(config.dataDir));
  const grpc = grpcExecutors({ ...config, logger });
  // LEARN_EXECUTOR=kubernetes: LEARN stages run as Kubernetes Jobs; the trainer service is not called.
  const executors = config.learnExecutor === 'kubernetes' ? { ...grpc, learn: kubernetesLearnExecutorFromEnv(process.env, { ...config, logger }) } : grpc;
  let running: Awaited<ReturnType<typeof startServer>> | undefined;
  // The database cannot be written (or another fault outside any stage): NOT_SERVING, then exit 1, so that the
  // orchestrator restarts the coordinator, which resumes the runs, instead of leaving them RUNNING with nothing
  // executing them.
  const onFatal = (error: unknown) => {
    logger.error({ err: error }, 'fatal: exiting so that the coordinator is restarted');
    running?.health.setStatus('', 'NOT_SERVING');
    setTimeout(() => process.exit(1), 100).unref();
  };
  // AUTH_TOKENS_FILE: bearer tokens and who they are (auth.ts); TLS_PRINCIPALS: client certificates and who they are
  // (cert-auth.ts); without either every caller may act on every run.
  const tokens = process.env.AUTH_TOKENS_FILE ? new TokenAuthenticator(process.env.AUTH_TOKENS_FILE) : undefined;
  const certificatePrincipals = parsePrincipals(process.env.TLS_PRINCIPALS ?? '');
  const authenticator: CallAuthenticator | undefined =
    certificatePrincipals.size > 0 ? new CertificateAuthenticator(certificatePrincipals, tokens) : tokens;
  if (!authenticator) logger.warn('authentication off: every caller may read and cancel every run (set AUTH_TOKENS_FILE or TLS_PRINCIPALS)');
  const engine = new RunEngine({ store, dataDir: config.dataDir, modelStoreUri: config.modelStoreUri, executors, logger, autoResume: config.autoResume, onFatal });
  running = await startServer({
    name: 'coordinator',
    port: config.port,
    bindings: [coordinatorBinding(engine, authenticator)],
    descriptorSetPath: DESCRIPTOR_SET_PATH,
    logger,
  });
  const resumed = engine.resumeAll();
  engine.startTicking(config.resumeTickMs);
  logger.info(
    { data_dir: config.dataDir, generator: config.generatorAddresses, judge: config.judgeAddresses, trainer: config.trainerAddress, learn_executor: config.learnExecutor, model_store: config.modelStoreUri, resumed },
    'coordinator ready',
  );

  // Stop executing first (runs stay RUNNING and resume at the next start; trainer jobs keep running), which also
  // ends the WatchRun streams, then drain the server. A second signal during that (a process-group kill also reaches
  // us through the tsx or npm wrapper that relays it) is ignored, not left to the default action that would end the
  // process mid-shutdown with 128 + the signal's number.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal received');
    engine
      .stop()
      .then(() => running!.shutdown())
      .then(() => {
        executors.close();
        store.close();
        lock.release();
        return shutdownTracing();
      })
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((error) => {
  process.stderr.write(`coordinator failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
