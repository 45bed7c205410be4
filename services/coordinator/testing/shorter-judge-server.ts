// A user's own judge for RunSpec.judge_address in the coordinator's tests: a real alignment.v1.Judge gRPC server on
// loopback whose rule scores a response by minus its length in characters (it prefers shorter responses). It follows
// the JudgePairs contract as the stack's RULE judge does: the first two responses or, with PAIRING_BEST_WORST, the
// highest against the lowest (the earlier on equal scores); identical responses and |s1 − s2| below the tie
// tolerance (equal scores always) are dropped and counted; only the request's shard; the pairs at output_uri.
import { toLocalPath } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH, JudgeMethod, JudgeService, Pairing, type JudgePairsRequest, type JudgePairsResponse } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { startServer, type RunningServer, type ServiceBinding } from '@alignment/service-kit';
import type * as grpc from '@grpc/grpc-js';
import { readObjects, writeJsonl, type JsonObject } from '../src/run/data';

/** The rule's score: shorter is better. */
export const shorterScore = (response: string) => -response.length;

/** Which two of a prompt's responses the request labels (indices into `responses`). */
function pick(responses: readonly string[], pairing: Pairing | undefined): [number, number] {
  if (pairing !== Pairing.PAIRING_BEST_WORST) return [0, 1];
  let best = 0;
  responses.forEach((r, i) => {
    if (shorterScore(r) > shorterScore(responses[best])) best = i;
  });
  let worst = best === 0 ? 1 : 0;
  responses.forEach((r, i) => {
    if (i !== best && shorterScore(r) < shorterScore(responses[worst])) worst = i;
  });
  return [best, worst];
}

export class ShorterJudgeServer {
  readonly calls: JudgePairsRequest[] = [];

  private constructor(
    readonly rule: string,
    private readonly server: RunningServer,
  ) {}

  static async start(rule: string): Promise<ShorterJudgeServer> {
    let self: ShorterJudgeServer | undefined;
    const judgePairs = async (request: JudgePairsRequest, call: grpc.ServerWritableStream<JudgePairsRequest, JudgePairsResponse>) => {
      self!.calls.push(request);
      if (request.method !== JudgeMethod.JUDGE_METHOD_RULE || request.rule?.rule !== rule) {
        throw new InvalidArgumentError('rule.rule', `this judge serves JUDGE_METHOD_RULE '${rule}'`);
      }
      const tolerance = request.rule.tieTolerance;
      const items = (await readObjects(toLocalPath(request.responses!.uri))).map((l) => l.value);
      const shard = request.shard;
      const counts = { numPrompts: 0, numPairs: 0, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0 };
      const pairs: JsonObject[] = [];
      items.forEach((item, i) => {
        if (shard && shard.count > 1 && i % shard.count !== shard.index) return;
        counts.numPrompts += 1;
        const responses = item.responses as string[];
        const [a, b] = pick(responses, request.pairing).map((k) => responses[k]);
        const [sa, sb] = [shorterScore(a), shorterScore(b)];
        if (a === b) counts.droppedIdentical += 1;
        else if (sa === sb || Math.abs(sa - sb) < tolerance) counts.droppedTies += 1;
        else {
          const [chosen, rejected, cs, rs] = sa > sb ? [a, b, sa, sb] : [b, a, sb, sa];
          pairs.push({ prompt_index: i, prompt: item.prompt, chosen, rejected, chosen_score: cs, rejected_score: rs, margin: cs - rs, method: 'rule' });
        }
      });
      counts.numPairs = pairs.length;
      const info = await writeJsonl(toLocalPath(request.outputUri), pairs);
      call.write({ event: { $case: 'result', value: { pairs: { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes }, counts } } });
    };
    const binding: ServiceBinding = {
      definition: JudgeService as unknown as ServiceBinding['definition'],
      handlers: {
        scoreSequences: async () => {
          throw new Error('ScoreSequences is not served by this judge');
        },
        judgePairs,
      },
    };
    const server = await startServer({ name: 'shorter-judge', port: 0, host: '127.0.0.1', bindings: [binding], descriptorSetPath: DESCRIPTOR_SET_PATH, drainTimeoutMs: 500 });
    self = new ShorterJudgeServer(rule, server);
    return self;
  }

  get address(): string {
    return this.server.address;
  }

  shutdown(): Promise<void> {
    return this.server.shutdown();
  }
}
