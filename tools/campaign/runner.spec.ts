// runCells: a group whose world data or base model cannot be made fails its own cells, reported with the reason,
// and the campaign goes on to the next group instead of stopping (a 21K budget on a world with fewer prompts once
// stopped a whole campaign this way).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Progress } from '../demo/progress';
import type { StackClients } from '../demo/stack';
import { CellStore, expandCells } from './cells';
import { CampaignEta } from './eta';
import { parsePlan } from './plan';
import { runCells } from './runner';

const PLAN = `
sections:
  main: {worlds: [arithmetic, listing], configs: [dpo-seed, wdro], budgets: [300], seeds: [1]}
`;

describe('campaign runner', () => {
  it('reports every group it cannot start, with its cells and the reason, and still tries the next group', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'campaign-runner-'));
    // The data directory is a file: no group can write its prompt sets there.
    const dataDir = path.join(tmp, 'not-a-directory');
    fs.writeFileSync(dataDir, '');
    const cells = expandCells(parsePlan(PLAN, 'test'), 'avx2');
    const logged: string[] = [];
    const progress = new Progress({ write: (chunk: string | Uint8Array) => logged.push(String(chunk)) > 0, isTTY: false });
    const failures = await runCells(
      {
        clients: {} as StackClients,
        python: 'python3',
        dataDir,
        worldCache: path.join(tmp, 'worlds'),
        cpuCapability: 'avx2',
        portBase: 50251,
        store: new CellStore(tmp),
        progress,
        eta: new CampaignEta(cells.length, 0),
      },
      cells,
    );
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatch(/^arithmetic-300-e\d+-cpu \(2 cells not run\): .*not-a-directory/);
    expect(failures[1]).toMatch(/^listing-300-e\d+-cpu \(2 cells not run\): .*not-a-directory/);
    expect(logged.join('')).toContain('FAILED listing-300');
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
