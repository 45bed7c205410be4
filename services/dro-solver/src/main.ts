import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { DEFAULT_PORTS, portFromEnv, startServer } from '@alignment/service-kit';
import { droSolverBinding } from './service';

// Serves alignment.v1.DroSolver in the foreground on $PORT (default 50054) until SIGTERM/SIGINT.
startServer({
  name: 'dro-solver',
  port: portFromEnv(DEFAULT_PORTS['dro-solver']),
  bindings: [droSolverBinding()],
  descriptorSetPath: DESCRIPTOR_SET_PATH,
  handleSignals: true,
}).catch((error) => {
  process.stderr.write(`dro-solver failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
