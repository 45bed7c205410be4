/**
 * How `npm run stack` (stack.ts) runs each of the five services: the command (run directly, so signals reach the
 * service) and the environment it adds, given the data directory and the ports. tools/chaos restarts a killed service
 * from the same table, as an orchestrator would.
 */
import * as path from 'node:path';

export type StackServiceName = 'coordinator' | 'generator' | 'judge' | 'dro-solver' | 'trainer';

export const STACK_SERVICES: readonly StackServiceName[] = ['coordinator', 'generator', 'judge', 'dro-solver', 'trainer'];

export interface ServiceCommand {
  command: string[];
  env: NodeJS.ProcessEnv;
}

/** The serve targets' commands (services/<name>/project.json), with their cwd the repository root `root`. */
export function serviceCommands(root: string, dataDir: string, ports: Record<StackServiceName, number>): Record<StackServiceName, ServiceCommand> {
  const addr = (name: StackServiceName) => `127.0.0.1:${ports[name]}`;
  const tsx = path.join(root, 'node_modules/.bin/tsx');
  const venvPython = 'venv=$(bash tools/python/venv.sh) && ';
  return {
    generator: { command: [tsx, 'services/generator/src/main.ts'], env: { DATA_DIR: path.join(dataDir, 'generator') } },
    judge: { command: [tsx, 'services/judge/src/main.ts'], env: { DATA_DIR: path.join(dataDir, 'judge') } },
    'dro-solver': { command: [tsx, 'services/dro-solver/src/main.ts'], env: {} },
    trainer: {
      command: ['bash', '-c', `${venvPython}PYTHONPATH=services/trainer/src exec "$venv/bin/python" -m alignment_trainer.server`],
      env: { DATA_DIR: path.join(dataDir, 'trainer'), DRO_SOLVER_ADDRESS: addr('dro-solver') },
    },
    coordinator: {
      command: [tsx, 'services/coordinator/src/main.ts'],
      env: {
        DATA_DIR: dataDir,
        GENERATOR_ADDRESS: addr('generator'),
        JUDGE_ADDRESS: addr('judge'),
        TRAINER_ADDRESS: addr('trainer'),
      },
    },
  };
}

/** A service's whole environment: the caller's, HOST (loopback only: in a pod the services bind every interface), its own, its PORT. */
export function serviceEnv(base: NodeJS.ProcessEnv, service: ServiceCommand, port: number): NodeJS.ProcessEnv {
  return { ...base, HOST: '127.0.0.1', ...service.env, PORT: String(port) };
}
