import { STACK_SERVICES } from '../stack/services';
import { MICRO_STAGES, describeFault, planFaults, stageServices } from './plan';

describe('the faults of npm run chaos', () => {
  it('are the same for the same seed, and run i does not depend on how many runs there are', () => {
    expect(planFaults('issue-12', 10)).toEqual(planFaults('issue-12', 10));
    expect(planFaults('issue-12', 10).slice(0, 2)).toEqual(planFaults('issue-12', 2));
    expect(planFaults('other', 10)).not.toEqual(planFaults('issue-12', 10));
  });

  it('are drawn over every service, the stages of the micro run, both actions and the whole of a stage', () => {
    const faults = planFaults('spread', 300);
    expect(faults.map((f) => f.run)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(new Set(faults.map((f) => f.service))).toEqual(new Set(STACK_SERVICES));
    expect(new Set(faults.map((f) => `${f.at.round} ${f.at.stage}`)).size).toBe(MICRO_STAGES.length);
    expect(new Set(faults.map((f) => f.action))).toEqual(new Set(['kill', 'pause']));
    expect(faults.every((f) => f.fraction >= 0 && f.fraction < 1)).toBe(true);
    expect(Math.min(...faults.map((f) => f.fraction))).toBeLessThan(0.05);
    expect(Math.max(...faults.map((f) => f.fraction))).toBeGreaterThan(0.95);
  });

  it('hit a service the stage uses: the coordinator, or the service it calls then', () => {
    const faults = planFaults('spread', 300);
    expect(faults.filter((f) => !stageServices(f.at).includes(f.service))).toEqual([]);
    expect(new Set(faults.filter((f) => f.service === 'dro-solver').map((f) => `${f.at.round} ${f.at.stage}`))).toEqual(new Set(['1 LEARN', '2 LEARN']));
    expect(stageServices({ round: 0, stage: 'LEARN' })).toEqual(['coordinator', 'trainer']);
    expect(stageServices({ round: 2, stage: 'EVALUATE' })).toEqual(['coordinator', 'generator', 'judge']);
  });

  it('knows the micro run: round 0 LEARN and EVALUATE, then GENERATE, JUDGE, LEARN, EVALUATE in rounds 1 and 2', () => {
    expect(MICRO_STAGES.map((s) => `${s.round} ${s.stage}`)).toEqual([
      '0 LEARN', '0 EVALUATE',
      '1 GENERATE', '1 JUDGE', '1 LEARN', '1 EVALUATE',
      '2 GENERATE', '2 JUDGE', '2 LEARN', '2 EVALUATE',
    ]);
    expect(describeFault({ run: 1, service: 'trainer', at: { round: 1, stage: 'LEARN' }, fraction: 0.37, action: 'kill' })).toBe(
      'kill -9 + restart of trainer at 37% of round 1 LEARN',
    );
  });
});
