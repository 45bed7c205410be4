// `alignment rm` against a real coordinator on loopback (its engine over in-memory stage executors).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Configuration, DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { startServer, type RunningServer } from '@alignment/service-kit';
import { closeHarnesses, harness, type Harness } from '../../../services/coordinator/testing/engine-harness';
import { validSpec } from '../../../services/coordinator/testing/run-fixtures';
import { coordinatorBinding } from '../../../services/coordinator/src/service';
import { main } from './main';

let h: Harness;
let server: RunningServer;
beforeAll(async () => {
  h = harness();
  server = await startServer({ name: 'cli-rm-test', port: 0, host: '127.0.0.1', bindings: [coordinatorBinding(h.engine)], descriptorSetPath: DESCRIPTOR_SET_PATH });
});
afterAll(async () => {
  await h.engine.stop();
  await server.shutdown();
  closeHarnesses();
});

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { ALIGNMENT_COORDINATOR: server.address } });
  return { code, stdout, stderr };
}

test('rm deletes a finished run and its directory; an unknown run exits 1 with NOT_FOUND', async () => {
  const spec = validSpec(h.ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 0, prompts: undefined, roundTraining: undefined });
  for (const runId of ['one', 'two']) {
    await h.engine.startRun({ runId, spec });
    await h.engine.settled(runId);
  }
  const bytes = h.engine.getRun('one').diskBytes;
  expect(bytes).toBeGreaterThan(0);
  expect(await cli('rm', 'one')).toEqual({ code: 0, stdout: `run one deleted (${bytes} bytes freed)\n`, stderr: '' });
  expect(fs.existsSync(path.join(h.dataDir, 'runs', 'one'))).toBe(false);
  const twoBytes = h.engine.getRun('two').diskBytes;
  const json = await cli('-o', 'json', 'rm', 'two');
  expect(JSON.parse(json.stdout)).toEqual({ runId: 'two', freedBytes: twoBytes });
  expect(await cli('rm', 'one')).toEqual({ code: 1, stdout: '', stderr: "alignment: NOT_FOUND: run_id: no run 'one'\n" });
});
